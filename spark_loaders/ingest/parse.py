"""Choose the parser for a file and return its records (the shared record shape)."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from pyspark.sql import DataFrame, SparkSession

from spark_loaders.ingest.csv_split import Record
from spark_loaders.ingest.records_exact import exact_records, exact_table
from spark_loaders.ingest.records_spark import fast_records, scan_lines

DEFAULT_PARALLEL_MIN_BYTES = 4 << 20


def parallel_min_bytes() -> int:
    """Files smaller than this are parsed by the exact parser on the driver: for them the
    extra Spark job of the parallel parser costs more than it saves."""
    return int(os.environ.get("CONDO_LOAD_PARALLEL_MIN_BYTES", DEFAULT_PARALLEL_MIN_BYTES))


@dataclass(frozen=True)
class Parsed:
    records: DataFrame
    parser: str  # "parallel" or "exact"


def parse_file(
    spark: SparkSession, path: Path, header: Record, *, size: int, has_quote: bool
) -> Parsed:
    """Raises csv_split.UnterminatedQuote when a quoted field never closes."""
    if size >= parallel_min_bytes():
        scan = scan_lines(spark, path, check_quotes=has_quote)
        if scan.irregular_lines == 0 and header.line == header.last_line:
            records = fast_records(spark, path, header_line=header.line, scan=scan)
            return Parsed(records, "parallel")
    table = exact_table(path, header_last_line=header.last_line)
    return Parsed(exact_records(spark, table), "exact")
