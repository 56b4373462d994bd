"""Choose the parser for a file and return its records (the shared record shape)."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from pyspark.sql import DataFrame, SparkSession

from spark_loaders.ingest.csv_split import Record
from spark_loaders.ingest.prescan import Prescan
from spark_loaders.ingest.records_exact import exact_records, exact_table
from spark_loaders.ingest.records_spark import fast_records, planned_line_offsets, scan_lines

DEFAULT_PARALLEL_MIN_BYTES = 4 << 20


def parallel_min_bytes() -> int:
    """Files smaller than this are parsed by the exact parser on the driver: for them the
    extra Spark job of the parallel parser costs more than it saves."""
    return int(os.environ.get("CONDO_LOAD_PARALLEL_MIN_BYTES", DEFAULT_PARALLEL_MIN_BYTES))


@dataclass(frozen=True)
class Parsed:
    records: DataFrame
    parser: str  # "parallel", "parallel-planned" or "exact"
    # For "parallel-planned": the data lines must be exactly header_line+1 .. last_line.
    expected_lines: tuple[int, int] | None = None


def parse_file(spark: SparkSession, path: Path, header: Record, scan_info: Prescan) -> Parsed:
    """Raises csv_split.UnterminatedQuote when a quoted field never closes."""
    if scan_info.size >= parallel_min_bytes():
        single_line_header = header.line == header.last_line
        if not scan_info.has_quote and not scan_info.maybe_blank and single_line_header:
            # No quotes and no blank lines: every line after the header is one data record,
            # and the line numbers come from the planned splits without a counting pass.
            planned = planned_line_offsets(
                spark, path, lambda offset: scan_info.newlines_before(path, offset)
            )
            if planned is not None:
                records = fast_records(spark, path, header_line=header.line, scan=planned)
                expected = (header.line + 1, scan_info.physical_lines)
                return Parsed(records, "parallel-planned", expected)
        scan = scan_lines(spark, path, check_quotes=scan_info.has_quote)
        if scan.irregular_lines == 0 and header.line == header.last_line:
            records = fast_records(spark, path, header_line=header.line, scan=scan)
            return Parsed(records, "parallel")
    table = exact_table(path, header_last_line=header.last_line)
    return Parsed(exact_records(spark, table), "exact")
