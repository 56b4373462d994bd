"""One way to get a SparkSession, shared by the loaders, the export and the stream.

Locally it is ``local[*]`` with its warehouse and Derby metastore under ``.condo/spark``.
Under ``spark-submit`` the master and resources come from spark-submit and are left alone.
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

from spark_loaders import spark_internals
from spark_loaders.errors import CondoError
from spark_loaders.java_check import check_java
from spark_loaders.paths import state_dir
from spark_loaders.spark_master import configured_master, is_local_master

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

DEBIAN_JDBC_JAR = Path("/usr/share/java/postgresql.jar")
JDBC_PACKAGE = "org.postgresql:postgresql:42.7.4"


def spark_dir() -> Path:
    """Warehouse and metastore of the local ``spark`` target. ``$CONDO_SPARK_DIR`` gives each
    run its own, since Derby admits one process at a time."""
    env = os.environ.get("CONDO_SPARK_DIR")
    return Path(env).resolve() if env else state_dir() / "spark"


def warehouse_settings(base: Path | None = None) -> dict[str, str]:
    """The settings that place the warehouse and Derby metastore; dbt's spark profile uses the same."""
    base = base or spark_dir()
    return {
        "spark.sql.warehouse.dir": str(base / "warehouse"),
        "spark.hadoop.javax.jdo.option.ConnectionURL": (
            f"jdbc:derby:;databaseName={base / 'metastore_db'};create=true"
        ),
    }


def _version_key(jar: Path) -> tuple[int, ...]:
    digits = [part for part in jar.stem.replace("-", ".").split(".") if part.isdigit()]
    return tuple(int(d) for d in digits)


def cached_jdbc_jar(home: Path | None = None) -> str | None:
    """The newest PostgreSQL driver already downloaded by Maven or by Spark's
    ``spark.jars.packages`` (Ivy), so a driver fetched once is found again offline."""
    home = home or Path.home()
    patterns = [
        (home / ".m2" / "repository" / "org" / "postgresql" / "postgresql", "*/postgresql-*.jar"),
        *((ivy / "jars", "org.postgresql_postgresql-*.jar") for ivy in home.glob(".ivy2*")),
    ]
    found = [
        jar
        for base, pattern in patterns
        if base.is_dir()
        for jar in base.glob(pattern)
        if jar.is_file() and not jar.name.endswith(("-sources.jar", "-javadoc.jar"))
    ]
    return str(max(found, key=_version_key)) if found else None


def jdbc_jar() -> str | None:
    """The PostgreSQL JDBC driver jar: ``$CONDO_JDBC_JAR`` (an explicit choice wins), then
    Debian's ``libpostgresql-jdbc-java``, then a copy in the local Maven or Ivy cache.
    None when there is none (``$CONDO_SPARK_PACKAGES`` may still bring one)."""
    configured = os.environ.get("CONDO_JDBC_JAR")
    if configured:
        if not Path(configured).is_file():
            raise CondoError(f"CONDO_JDBC_JAR points at {configured}, which does not exist")
        return configured
    if DEBIAN_JDBC_JAR.is_file():
        return str(DEBIAN_JDBC_JAR)
    return cached_jdbc_jar()


def jdbc_packages() -> str | None:
    """Maven coordinates for ``spark.jars.packages`` when no jar is found on disk:
    ``$CONDO_SPARK_PACKAGES``, else the default driver; ``CONDO_SPARK_PACKAGES=none``
    turns the download off."""
    configured = os.environ.get("CONDO_SPARK_PACKAGES")
    if configured is not None:
        return None if configured.strip().lower() in ("", "none") else configured
    return JDBC_PACKAGE


def under_spark_submit() -> bool:
    return "PYSPARK_GATEWAY_PORT" in os.environ


def get_spark(app_name: str = "condo", *, hive: bool = False) -> SparkSession:
    """The active session, or a new one. ``hive=True`` enables the persistent metastore
    used by the dbt ``spark`` target."""
    from pyspark.sql import SparkSession

    active = SparkSession.getActiveSession()
    if active is not None:
        return active
    submitted = under_spark_submit()
    if not submitted:
        check_java()
        # Local Python workers must run this interpreter (the venv with pyarrow), not
        # whatever `python3` is first on PATH.
        os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    builder = SparkSession.builder.appName(app_name)
    packages = None
    if not submitted:
        builder, packages = _local_settings(builder)
    elif os.environ.get("CONDO_SPARK_MASTER_EXPLICIT"):
        # The entry script was given --master itself: it wins over spark-submit's.
        builder = builder.master(configured_master())
    builder = builder.config("spark.sql.session.timeZone", "UTC")
    if hive:
        if not submitted:
            # Locally, a project-owned warehouse and Derby metastore; on a cluster the
            # metastore and warehouse configured for spark-submit are left alone.
            for key, value in warehouse_settings().items():
                builder = builder.config(key, value)
        builder = builder.enableHiveSupport()
    spark = _create(builder, packages)
    spark.sparkContext.setLogLevel(os.environ.get("CONDO_SPARK_LOG_LEVEL", "WARN"))
    ship_package(spark)
    return spark


class LazySession:
    """A SparkSession that starts on first use: ``condo load`` of files that the vectorised
    path takes in-process (``ingest/records_arrow.py``) never pays the JVM's start-up.

    Attribute access is forwarded to the real session, started by ``factory`` the first time
    anything asks for it; code that receives one can treat it as a SparkSession (see
    :func:`lazy_spark`)."""

    def __init__(self, factory: Callable[[], SparkSession]) -> None:
        self._factory = factory
        self._session: SparkSession | None = None

    @property
    def started(self) -> bool:
        return self._session is not None

    def get(self) -> SparkSession:
        if self._session is None:
            logging.getLogger(__name__).info("starting Spark")
            self._session = self._factory()
        return self._session

    def __getattr__(self, name: str) -> Any:
        return getattr(self.get(), name)


def lazy_spark(app_name: str = "condo", *, hive: bool = False) -> SparkSession:
    """:func:`get_spark`, deferred until the session is first used."""
    return cast("SparkSession", LazySession(lambda: get_spark(app_name, hive=hive)))


def session_started(spark: SparkSession) -> bool:
    """False for a :class:`LazySession` nobody has used yet (asking does not start it)."""
    return not isinstance(spark, LazySession) or spark.started


def local_cores(spark: SparkSession) -> int | None:
    """The cores of a local-mode session (``local``, ``local[N]``, ``local[*]``), without
    starting a lazy one; None when the session runs on a cluster."""
    master = (spark.sparkContext.master if session_started(spark) else None) or configured_master()
    if not is_local_master(master):
        return None
    inside = master[len("local") :].strip("[]").split(",")[0]
    if inside == "*":
        return os.cpu_count() or 1
    return max(1, int(inside)) if inside else 1


def _local_settings(builder: SparkSession.Builder) -> tuple[SparkSession.Builder, str | None]:
    """A session this process starts itself (not under spark-submit): master, memory,
    quiet UI, the cluster settings and the JDBC driver (a jar on disk, else the Maven
    coordinates, returned so a failed download can be retried without them)."""
    master = configured_master()
    builder = (
        builder.master(master)
        .config("spark.driver.memory", os.environ.get("CONDO_SPARK_DRIVER_MEMORY", "4g"))
        .config("spark.ui.enabled", os.environ.get("CONDO_SPARK_UI", "false"))
        .config("spark.ui.showConsoleProgress", "false")
        .config("spark.sql.shuffle.partitions", os.environ.get("CONDO_SHUFFLE_PARTITIONS", "8"))
        .config("spark.driver.extraJavaOptions", f"-Dderby.system.home={spark_dir()}")
    )
    for key, value in cluster_settings(master).items():
        builder = builder.config(key, value)
    jar = jdbc_jar()
    if jar:
        return builder.config("spark.jars", jar), None
    packages = jdbc_packages()
    if packages:
        builder = builder.config("spark.jars.packages", packages)
    return builder, packages


def _create(builder: SparkSession.Builder, packages: str | None) -> SparkSession:
    try:
        return builder.getOrCreate()
    except Exception:
        if not packages or os.environ.get("CONDO_SPARK_PACKAGES"):
            raise
        # The default coordinates could not be fetched (offline, no Maven access): start
        # without the driver; a JDBC read then stops with require_jdbc's message.
        logging.getLogger(__name__).warning(
            "could not download the PostgreSQL JDBC driver (%s); continuing without it", packages
        )
        spark_internals.drop_builder_option(builder, "spark.jars.packages")
        return builder.getOrCreate()


def cluster_settings(master: str) -> dict[str, str]:
    """Settings that matter only when executors run in JVMs of their own (not ``local``):
    executor memory and cores from ``$CONDO_SPARK_EXECUTOR_MEMORY`` /
    ``$CONDO_SPARK_EXECUTOR_CORES`` when set, and the Python the workers run. The
    interpreter path is this one (the venv with psycopg and pyarrow) unless
    ``$PYSPARK_PYTHON`` says otherwise, so every worker needs a Python at that path."""
    if is_local_master(master):
        return {}
    settings = {"spark.pyspark.python": os.environ.get("PYSPARK_PYTHON", sys.executable)}
    for key, env in (
        ("spark.executor.memory", "CONDO_SPARK_EXECUTOR_MEMORY"),
        ("spark.executor.cores", "CONDO_SPARK_EXECUTOR_CORES"),
        ("spark.cores.max", "CONDO_SPARK_CORES_MAX"),
    ):
        if os.environ.get(env):
            settings[key] = os.environ[env]
    return settings


def package_zip(directory: Path) -> Path:
    """A zip of the ``spark_loaders`` package (its ``.py`` files), as ``make dist`` builds."""
    import zipfile

    package = Path(__file__).resolve().parent
    target = directory / "spark_loaders.zip"
    with zipfile.ZipFile(target, "w", zipfile.ZIP_DEFLATED) as archive:
        for source in sorted(package.rglob("*.py")):
            archive.write(source, Path("spark_loaders") / source.relative_to(package))
    return target


def ship_package(spark: SparkSession) -> None:
    """On a cluster, make ``spark_loaders`` importable by the executors' Python workers,
    which do not share the driver's ``sys.path``: add a zip of the package to the session,
    unless spark-submit already ships it (``--py-files``) or the package is itself loaded
    from a zip."""
    import tempfile

    conf = spark.sparkContext.getConf()
    if is_local_master(conf.get("spark.master", "local")):
        return
    if "spark_loaders" in (conf.get("spark.submit.pyFiles", "") or ""):
        return
    if not Path(__file__).resolve().parent.is_dir():
        return
    import atexit
    import shutil

    directory = Path(tempfile.mkdtemp(prefix="condo-pyfiles-"))
    atexit.register(shutil.rmtree, directory, True)
    spark.sparkContext.addPyFile(str(package_zip(directory)))


JDBC_DRIVER_CLASS = "org.postgresql.Driver"


def _missing_driver_message() -> str:
    return (
        "the PostgreSQL JDBC driver was not found: install Debian's libpostgresql-jdbc-java, "
        "set CONDO_JDBC_JAR to a postgresql-*.jar, or let Spark download it "
        f"(CONDO_SPARK_PACKAGES={JDBC_PACKAGE}, needs access to Maven Central)"
    )


def jdbc_driver_loadable(spark: SparkSession) -> bool:
    """Whether the session's JVM can load the PostgreSQL driver class (the real test:
    a session started by spark-submit or by someone else may lack the jar)."""
    jvm = spark_internals.jvm(spark)
    try:
        jvm.org.apache.spark.util.Utils.classForName(JDBC_DRIVER_CLASS, True, False)
        return True
    except Exception:
        return False


def require_jdbc(spark: SparkSession | None = None) -> None:
    """Fail clearly when a JDBC read or write is about to happen without a driver.

    Without ``spark`` this checks the configuration before a session starts; with it, it
    asks the session's JVM whether the driver class actually loads."""
    if spark is not None:
        if jdbc_driver_loadable(spark):
            return
        # A session started without the jar (spark-submit without --jars, or another
        # caller's session): add it the way SQL's ADD JAR does, for driver and executors.
        jar = jdbc_jar()
        if jar is not None:
            spark.sql(f"ADD JAR '{jar}'")
            if jdbc_driver_loadable(spark):
                return
        raise CondoError(_missing_driver_message())
    if jdbc_jar() is None and jdbc_packages() is None and not under_spark_submit():
        raise CondoError(_missing_driver_message())
