"""``DataFrame.mapInArrow`` without the pandas requirement.

PySpark's public ``mapInArrow`` goes through ``pandas_udf``, which insists on pandas being
installed although the Arrow map path never uses it (neither on the driver nor in the Python
workers). The project does not depend on pandas, so this builds the same plan node directly
(:func:`spark_loaders.spark_internals.map_in_arrow`).
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Iterator

import pyarrow as pa
from pyspark.sql import DataFrame
from pyspark.sql import types as T

from spark_loaders import spark_internals


def ensure_local_worker_python(df: DataFrame) -> None:
    """In local mode, run Python workers with this interpreter (it has pyarrow and psycopg)
    unless PYSPARK_PYTHON says otherwise; on a cluster, PYSPARK_PYTHON must be configured."""
    context = df.sparkSession.sparkContext
    if context.master.startswith("local") and not os.environ.get("PYSPARK_PYTHON"):
        spark_internals.set_worker_python(context, sys.executable)


def map_in_arrow(
    df: DataFrame,
    func: Callable[[Iterator[pa.RecordBatch]], Iterator[pa.RecordBatch]],
    schema: T.StructType,
) -> DataFrame:
    ensure_local_worker_python(df)
    return spark_internals.map_in_arrow(df, func, schema)
