"""What a load does with a file before writing anything, on either target (PostgreSQL,
``file_load.py``; Spark tables, ``sink_spark.py``): skip bytes that are already loaded, reject
the file whole for its encoding or its header, map the header, choose the id base, and parse
and validate the records (a lazy Spark plan; nothing is read until the caller writes)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from pyspark.sql import DataFrame, SparkSession

from spark_loaders.domain import Entity
from spark_loaders.ingest.csv_split import UnterminatedQuote
from spark_loaders.ingest.discover import SourceFile
from spark_loaders.ingest.header import ColumnMap, HeaderError, map_header
from spark_loaders.ingest.ids import positional_base
from spark_loaders.ingest.ledger import PreviousLoad
from spark_loaders.ingest.parse import Parsed, parse_file
from spark_loaders.ingest.prescan import Prescan, UnparsableHeader, read_header
from spark_loaders.ingest.records_arrow import eligible
from spark_loaders.ingest.validate import check


class FileRejected(Exception):
    """The file is rejected whole: nothing of it is loaded, the reason goes to the ledger."""


@dataclass(frozen=True)
class CheckedFile:
    """A file that passed the whole-file checks."""

    base: int | None = None  # positional id base (ids.positional_base); None: ids in the file
    parsed: Parsed | None = None
    checked: DataFrame | None = None  # validate.check's output; None: no header, no rows
    # Set instead of parsed/checked when the vectorised path takes the file (records_arrow):
    cmap: ColumnMap | None = None
    expected_lines: tuple[int, int] | None = None  # the data lines, header_line+1 .. last


def check_file(
    spark: SparkSession,
    source: SourceFile,
    scan: Prescan,
    entity: Entity,
    *,
    previous: PreviousLoad | None,
    force: bool,
    high_water: Callable[[], int],
    on_header: Callable[[ColumnMap], None],
    vectorised: bool = False,
) -> CheckedFile | None:
    """None when these bytes are already loaded and ``force`` is off: the caller records a
    skip. Raises :class:`FileRejected` when the file cannot be loaded at all. ``on_header``
    gets the header's mapping as soon as it is known (the ledger keeps ``has_ids`` and the
    warnings even when parsing then rejects the file); ``high_water`` is called only for a
    file with a header. With ``vectorised``, a file that :func:`records_arrow.eligible` allows
    comes back with ``cmap`` and ``expected_lines`` and no Spark plan: the caller writes it
    with ``sink_postgres.write_bulk_vectorised``."""
    if previous is not None and not force:
        return None
    if scan.encoding_error:
        raise FileRejected(scan.encoding_error)
    try:
        header = read_header(source.path)
    except UnparsableHeader as exc:
        raise FileRejected(str(exc)) from None
    if header.record is None:
        return CheckedFile()
    try:
        cmap = map_header(entity, header.names)
    except HeaderError as exc:
        raise FileRejected(str(exc)) from None
    on_header(cmap)
    base = positional_base(cmap.has_ids, high_water(), previous)
    if vectorised and eligible(scan, header.record.line, header.record.last_line):
        return CheckedFile(
            base, cmap=cmap, expected_lines=(header.record.line + 1, scan.physical_lines)
        )
    try:
        parsed = parse_file(spark, source.path, header.record, scan)
    except UnterminatedQuote as exc:
        raise FileRejected(f"cannot be parsed: {exc}") from None
    return CheckedFile(base, parsed, check(parsed.records, entity, cmap, id_base=base))
