"""Every use of PySpark's private API in the project, in one place.

PySpark's public Python API does not cover a few things the jobs need: the Hadoop
``FileSystem`` of the session (remote checkpoints and landing directories), draining the
listener bus, dropping a builder option, ``mapInArrow`` without pandas and the planned
file splits of a scan. The functions below reach into PySpark's internals (``_jvm``,
``_jsc``, ``_jdf``, ``Builder._options``, ``vectorized_udf`` with ``PythonEvalType``) for
them. Nothing else in ``spark_loaders`` may touch a private PySpark name: import from here.

These names can change in any PySpark release, so the project pins ``pyspark`` to the minor
version they were checked against (:data:`TESTED_PYSPARK`, ``pyspark~=4.3.0`` in
``pyproject.toml``). ``tests/python/test_spark_internals.py`` fails when the installed
minor version differs and calls each function against a real session; when upgrading
PySpark, run it, fix what it finds here, then move :data:`TESTED_PYSPARK`.

Each function's comment says why it is used and which public API would replace it.
Importing this module does not import pyspark.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pyarrow as pa
    from pyspark import SparkContext
    from pyspark.sql import DataFrame, SparkSession
    from pyspark.sql import types as T

# The PySpark minor version every function below was checked against.
TESTED_PYSPARK = "4.3"


def jvm(spark: SparkSession) -> Any:
    """The py4j view of the driver JVM (``SparkContext._jvm``).

    Why: Hadoop's ``FileSystem`` (``fsio``, ``streaming.query_id``) and the JDBC driver check
    (``spark_session.jdbc_driver_loadable``) need Java classes that PySpark does not wrap.
    Public replacement: none in PySpark; for files, ``pyarrow.fs.HadoopFileSystem`` or
    fsspec would do it outside Spark, at the cost of configuring credentials twice.
    """
    return spark.sparkContext._jvm


def hadoop_configuration(spark: SparkSession) -> Any:
    """The session's Hadoop ``Configuration`` (``SparkContext._jsc.hadoopConfiguration()``),
    holding the ``spark.hadoop.*`` settings (s3a credentials and so on).

    Why: a ``FileSystem`` opened with it sees the same stores, with the same credentials,
    as the Spark reads and writes. Public replacement: none in PySpark.
    """
    return spark.sparkContext._jsc.hadoopConfiguration()


def wait_for_listener_bus(spark: SparkSession, timeout_ms: int) -> None:
    """Block until the driver's listener bus has delivered its queued events
    (``SparkContext._jsc.sc().listenerBus().waitUntilEmpty``), at most ``timeout_ms``.

    Why: ``streaming.run`` removes its Python ``StreamingQueryListener`` when the query
    ends; an event still queued would then call into a Python process that is exiting.
    Public replacement: none (Spark's own tests use this call); the alternative is a fixed
    sleep before ``removeListener``.
    """
    spark.sparkContext._jsc.sc().listenerBus().waitUntilEmpty(timeout_ms)


def drop_builder_option(builder: SparkSession.Builder, key: str) -> Any:
    """Remove ``key`` from a ``SparkSession.Builder`` (``Builder._options``); return the
    value it had, or None.

    Why: ``spark_session.get_spark`` retries without ``spark.jars.packages`` when the JDBC
    driver cannot be downloaded, keeping every other setting. Public replacement: build a
    new builder from a settings dict without that key (``Builder`` has no public remove).
    """
    return builder._options.pop(key, None)


def set_worker_python(context: SparkContext, executable: str) -> None:
    """Make the Python workers of ``context`` run ``executable`` (``SparkContext.pythonExec``,
    an undocumented attribute read when a worker starts).

    Why: in local mode the Arrow map path needs a worker with pyarrow and psycopg, i.e. this
    venv's interpreter, even when the session was started without ``PYSPARK_PYTHON``.
    Public replacement: ``spark.pyspark.python`` or ``PYSPARK_PYTHON`` set before the
    session starts, which a session started by someone else may lack.
    """
    context.pythonExec = executable


def map_in_arrow(
    df: DataFrame,
    func: Callable[[Iterator[pa.RecordBatch]], Iterator[pa.RecordBatch]],
    schema: T.StructType,
) -> DataFrame:
    """``df.mapInArrow(func, schema)`` built by hand: the same plan node, without pandas.

    Why: the public ``DataFrame.mapInArrow`` creates its UDF with ``pandas_udf``, which
    refuses to run unless pandas is installed, although the Arrow path never uses pandas;
    the project does not depend on pandas. This creates the UDF with the private
    ``vectorized_udf`` and ``PythonEvalType.SQL_MAP_ARROW_ITER_UDF`` and calls the JVM
    ``Dataset.mapInArrow`` through ``_jdf`` and the column's ``_jc``, as the public method
    does (no barrier, no resource profile).
    Public replacement: ``df.mapInArrow(func, schema)`` once pandas is a dependency, or once
    PySpark stops requiring pandas for it.
    """
    from pyspark.sql import DataFrame
    from pyspark.sql.pandas.functions import vectorized_udf
    from pyspark.util import PythonEvalType

    udf = vectorized_udf(func, schema, PythonEvalType.SQL_MAP_ARROW_ITER_UDF, "pandas")
    column = udf(*[df[name] for name in df.columns])
    return DataFrame(df._jdf.mapInArrow(column._jc, False, None), df.sparkSession)


def planned_file_splits(df: DataFrame) -> list[tuple[int, list[int]]]:
    """For a file scan ``df``, the partitions Spark plans: ``(partition index, [start byte
    of each file split it reads])``, from ``_jdf.queryExecution().executedPlan().execute()``.

    Why: ``ingest.records_spark.planned_line_offsets`` numbers the lines of a CSV file
    without a counting pass over it by knowing where each partition's split starts.
    Public replacement: none; ``df.inputFiles()`` gives the files but not the splits. The
    fallback is the counting pass the caller already has.
    """
    rdd = df._jdf.queryExecution().executedPlan().execute()
    return [
        (int(partition.index()), [int(split.start()) for split in partition.files()])
        for partition in rdd.partitions()
    ]
