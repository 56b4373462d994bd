"""Spark's Thrift (HiveServer2) server for dbt's ``spark_thrift`` target, over the same
warehouse and metastore as the loader's ``--target spark`` and the dbt ``spark`` target.

Started on its own, Spark's Thrift server keeps a ``metastore_db`` and ``spark-warehouse``
in its working directory and sees none of the loaders' tables. :func:`server_command`
starts it with the project's warehouse settings (``spark_session.warehouse_settings``,
under ``$CONDO_SPARK_DIR``), so it opens the catalog the loaders wrote.

The catalog is an embedded Derby database, which admits one process at a time: run the
loader (``condo load --target spark``), let it exit, then start the server. For loaders
and the server at the same time, use a shared metastore (docs/deployment.md).
"""

from __future__ import annotations

import os
from pathlib import Path

from spark_loaders.spark_session import spark_dir, warehouse_settings

SERVER_CLASS = "org.apache.spark.sql.hive.thriftserver.HiveThriftServer2"


def spark_home() -> Path:
    """``$SPARK_HOME``, else the installed pyspark (which ships the Thrift server's jar)."""
    env = os.environ.get("SPARK_HOME")
    if env:
        return Path(env)
    import pyspark

    return Path(pyspark.__file__).resolve().parent


def server_command(
    *, master: str, base: Path | None = None, name: str = "condo-thrift"
) -> list[str]:
    """The spark-submit command line of the server (the foreground process, no daemon)."""
    base = base or spark_dir()
    conf = {
        **warehouse_settings(base),
        "spark.sql.catalogImplementation": "hive",
        "spark.sql.session.timeZone": "UTC",
        "spark.ui.enabled": os.environ.get("CONDO_SPARK_UI", "false"),
        "spark.sql.shuffle.partitions": os.environ.get("CONDO_SHUFFLE_PARTITIONS", "8"),
    }
    command = [
        str(spark_home() / "bin" / "spark-submit"),
        "--class", SERVER_CLASS,
        "--master", master,
        "--name", name,
        "--driver-memory", os.environ.get("CONDO_SPARK_DRIVER_MEMORY", "4g"),
        "--driver-java-options", f"-Dderby.system.home={base}",
    ]  # fmt: skip
    for key, value in conf.items():
        command += ["--conf", f"{key}={value}"]
    return [*command, "spark-internal"]


def server_environment(*, host: str, port: int) -> dict[str, str]:
    """Where the server listens: Spark reads these two variables (as ``--hiveconf``)."""
    return {
        **os.environ,
        "HIVE_SERVER2_THRIFT_BIND_HOST": host,
        "HIVE_SERVER2_THRIFT_PORT": str(port),
    }
