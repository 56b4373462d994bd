"""The exact parser for files the parallel one cannot split (records spanning lines, stray
quotes): the driver reads the file once with :mod:`spark_loaders.ingest.csv_split` and hands
Spark the same record shape as :func:`spark_loaders.ingest.records_spark.fast_records`.

The records travel through the driver, so this path is meant for the irregular files that
need it, not for bulk extracts.
"""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import types as T

from spark_loaders.ingest.csv_split import iter_records, physical_lines

RECORD_SCHEMA = T.StructType(
    [
        T.StructField("_line", T.LongType(), False),
        T.StructField("_raw", T.StringType(), False),
        T.StructField("_fields", T.ArrayType(T.StringType(), False), True),
        T.StructField("_ord", T.LongType(), False),
    ]
)
_ARROW_SCHEMA = pa.schema(
    [
        pa.field("_line", pa.int64(), False),
        pa.field("_raw", pa.string(), False),
        pa.field("_fields", pa.list_(pa.field("element", pa.string(), False)), True),
        pa.field("_ord", pa.int64(), False),
    ]
)


def exact_table(path: Path, *, header_last_line: int) -> pa.Table:
    """Data records after the header. Raises csv_split.UnterminatedQuote."""
    lines_, raws, fields, ords = [], [], [], []
    ordinal = 0
    with path.open("r", encoding="utf-8-sig", newline="\n") as handle:
        for record in iter_records(physical_lines(handle)):
            if record.line <= header_last_line:
                continue
            ordinal += 1
            lines_.append(record.line)
            raws.append(record.raw)
            fields.append(record.fields)
            ords.append(ordinal)
    return pa.Table.from_arrays(
        [
            pa.array(lines_, pa.int64()),
            pa.array(raws, pa.string()),
            pa.array(fields, _ARROW_SCHEMA.field("_fields").type),
            pa.array(ords, pa.int64()),
        ],
        schema=_ARROW_SCHEMA,
    )


def exact_records(spark: SparkSession, table: pa.Table) -> DataFrame:
    if table.num_rows == 0:
        return spark.createDataFrame([], RECORD_SCHEMA)
    return spark.createDataFrame(table, schema=RECORD_SCHEMA)
