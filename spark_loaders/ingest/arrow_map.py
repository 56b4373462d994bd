"""``DataFrame.mapInArrow`` without the pandas requirement.

PySpark's public ``mapInArrow`` goes through ``pandas_udf``, which insists on pandas being
installed although the Arrow map path never uses it (neither on the driver nor in the Python
workers). The project does not depend on pandas, so this builds the same plan node directly.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Iterator

import pyarrow as pa
from pyspark.sql import DataFrame
from pyspark.sql import types as T


def ensure_local_worker_python(df: DataFrame) -> None:
    """In local mode, run Python workers with this interpreter (it has pyarrow and psycopg)
    unless PYSPARK_PYTHON says otherwise; on a cluster, PYSPARK_PYTHON must be configured."""
    context = df.sparkSession.sparkContext
    if context.master.startswith("local") and not os.environ.get("PYSPARK_PYTHON"):
        context.pythonExec = sys.executable


def map_in_arrow(
    df: DataFrame,
    func: Callable[[Iterator[pa.RecordBatch]], Iterator[pa.RecordBatch]],
    schema: T.StructType,
) -> DataFrame:
    from pyspark.sql.pandas.functions import vectorized_udf
    from pyspark.util import PythonEvalType

    ensure_local_worker_python(df)
    udf = vectorized_udf(func, schema, PythonEvalType.SQL_MAP_ARROW_ITER_UDF, "pandas")
    column = udf(*[df[name] for name in df.columns])
    return DataFrame(df._jdf.mapInArrow(column._jc, False, None), df.sparkSession)
