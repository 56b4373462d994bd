"""Load one file into PostgreSQL bronze: the per-file protocol.

1. Pre-scan the bytes (hash, size, UTF-8) outside any lock.
2. Take the entity's advisory lock (session level: a killed loader releases it with its
   connection), drop leftovers of killed runs, and look the hash up in the ledger.
3. Parse and validate with Spark, write rows and rejects (bulk staging or direct).
4. One transaction: publish rows and rejects, replace the previous load on ``--force``, write
   the ledger entry, raise the id high-water mark.
"""

from __future__ import annotations

import functools
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import psycopg
from pyspark.sql import SparkSession

from spark_loaders.domain import BY_NAME
from spark_loaders.ingest import ledger
from spark_loaders.ingest.copy_stream import Stats
from spark_loaders.ingest.ddl import LOCK_NAMESPACE, entity_lock_key
from spark_loaders.ingest.discover import SourceFile
from spark_loaders.ingest.file_checks import CheckedFile, FileRejected, check_file
from spark_loaders.ingest.header import ColumnMap
from spark_loaders.ingest.ids import IdOutcome, check_room, id_outcome
from spark_loaders.ingest.prescan import Prescan, prescan, raw_sha256
from spark_loaders.ingest.records_arrow import Layout, plan_chunks
from spark_loaders.ingest.report import FileResult
from spark_loaders.ingest.sink_postgres import (
    Staging,
    collect_direct,
    drop_leftovers,
    prebuild_indexes_while,
    publish_bulk,
    publish_direct,
    remove_load,
    write_bulk,
    write_bulk_vectorised,
)
from spark_loaders.ingest.validate import copy_lines
from spark_loaders.spark_session import local_cores

if TYPE_CHECKING:
    import pyarrow as pa

DEFAULT_BULK_MIN_BYTES = 8 << 20


def bulk_min_bytes() -> int:
    return int(os.environ.get("CONDO_LOAD_BULK_MIN_BYTES", DEFAULT_BULK_MIN_BYTES))


@dataclass(frozen=True)
class RunContext:
    mode: str = "batch"
    stream_query_id: str | None = None
    stream_batch_id: int | None = None


def short_error(exc: BaseException, limit: int = 400) -> str:
    text = str(exc).strip().splitlines()
    first = text[0] if text else type(exc).__name__
    return first if len(first) <= limit else first[: limit - 3] + "..."


class FileChanged(Exception):
    """The file's size, modification time or bytes changed while it was being loaded."""


@dataclass(frozen=True)
class Snapshot:
    """What a file looked like when its load began: compared again before the commit."""

    size: int
    mtime_ns: int
    sha256: str


def snapshot_before(path, scan: Prescan, before) -> Snapshot:
    """The file as the pre-scan saw it; raises FileChanged if it moved during the pre-scan."""
    after = path.stat()
    if (before.st_size, before.st_mtime_ns) != (after.st_size, after.st_mtime_ns) or (
        scan.size != after.st_size
    ):
        raise FileChanged(
            f"the file changed while it was being read (size {before.st_size} -> "
            f"{after.st_size} bytes); it is still being written?"
        )
    return Snapshot(after.st_size, after.st_mtime_ns, scan.sha256)


def verify_unchanged(path, snap: Snapshot) -> None:
    """Size, modification time and bytes are still those the load parsed."""
    try:
        now = path.stat()
    except OSError as exc:
        raise FileChanged(f"the file disappeared during the load ({exc.strerror})") from None
    if (now.st_size, now.st_mtime_ns) != (snap.size, snap.mtime_ns):
        raise FileChanged(
            f"the file changed during the load (size {snap.size} -> {now.st_size} bytes, "
            "modification time moved); it is still being written? write it elsewhere and "
            "rename it in"
        )
    if raw_sha256(path) != snap.sha256:
        raise FileChanged("the file's bytes changed during the load (same size and mtime)")


def load_file(
    spark: SparkSession, conninfo: dict, source: SourceFile, *, force: bool, run: RunContext
) -> FileResult:
    clock = time.monotonic()
    entity = BY_NAME[source.entity]
    if source.symlink:
        return _refuse_symlink(conninfo, source, run, clock)
    scan, snap, problem = _first_read(source)
    result = FileResult(source.entity, source.path, "failed", content_hash=scan.content_hash)
    with psycopg.connect(**conninfo, autocommit=True) as conn:
        conn.execute(
            "select pg_advisory_lock(%s, %s)", (LOCK_NAMESPACE, entity_lock_key(entity.name))
        )
        drop_leftovers(conn, entity.name)
        entry = _new_entry(conn, source, scan, run)
        result.load_id = entry.load_id
        staging = Staging(entity, entry.load_id, source.name)
        previous = ledger.find_loaded(conn, entity.name, scan.content_hash, scan.sha256)

        def on_header(cmap: ColumnMap) -> None:
            entry.has_ids = cmap.has_ids
            entry.warnings = list(cmap.warnings)

        try:
            if problem is not None:
                if not isinstance(problem, FileChanged):
                    entry.reason = "unreadable"
                raise problem
            file = check_file(
                spark,
                source,
                scan,
                entity,
                previous=previous,
                force=force,
                high_water=lambda: ledger.high_water(conn, entity.name),
                on_header=on_header,
                vectorised=vectorised_eligible(source, scan),
            )
            if file is None:
                _record_duplicate(conn, entry, result, previous)
                return result
            written = _write(spark, conn, conninfo, staging, file, source, scan)
            result.parser = entry.parser = written.parser
            ids = id_outcome(file.base, written.stats)
            # Everything is parsed and written (not yet visible): the bytes must still be
            # those that were hashed, or the rows may come from a half-written file. A bulk
            # load re-reads them while the server builds the id btree.
            _index_and_recheck(conn, staging, written, source, snap)
            _publish(conn, staging, written, entry, previous, ids)
        except FileChanged as exc:
            _mark_changed(entry, exc)
            _record_failure(conn, entry, staging)
        except FileRejected as exc:
            _mark_rejected(entry, exc, source, snap)
            _record_failure(conn, entry, staging)
        except Exception as exc:
            _mark_failed(entry, exc, source, snap)
            if not _record_failure(conn, entry, staging):
                raise
        finally:
            result.seconds = time.monotonic() - clock
        _fill(result, entry)
        return result


_NO_SCAN = Prescan("", 0, None, False, False, (0,), 0, "")


def _first_read(source: SourceFile) -> tuple[Prescan, Snapshot | None, Exception | None]:
    """Pre-scan the bytes, outside any lock. A file that cannot be read, or that changes
    while it is read, gives the error its load records once it holds the entity's lock."""
    scan = _NO_SCAN
    try:
        before = source.path.stat()
        scan = prescan(source.path)
        return scan, snapshot_before(source.path, scan, before), None
    except FileChanged as exc:
        return scan, None, exc
    except OSError as exc:
        return _NO_SCAN, None, OSError(f"cannot read the file: {exc.strerror or exc}")


def _new_entry(
    conn: psycopg.Connection, source: SourceFile, scan: Prescan, run: RunContext
) -> ledger.LedgerEntry:
    """The ledger entry as it stands when the load begins: failed until it succeeds."""
    return ledger.LedgerEntry(
        load_id=ledger.next_load_id(conn),
        entity=source.entity,
        source_file=source.name,
        source_path=str(source.path),
        content_hash=scan.content_hash,
        size_bytes=scan.size,
        status="failed",
        started_at=ledger.db_now(conn),
        mode=run.mode,
        stream_query_id=run.stream_query_id,
        stream_batch_id=run.stream_batch_id,
    )


def _record_duplicate(
    conn: psycopg.Connection,
    entry: ledger.LedgerEntry,
    result: FileResult,
    previous: ledger.PreviousLoad | None,
) -> None:
    """These bytes are loaded already: the skip is recorded, nothing else is written."""
    entry.status = result.status = "skipped"
    entry.reason = "duplicate"
    entry.duplicate_of = result.duplicate_of = previous.load_id
    ledger.insert(conn, entry)


@dataclass(frozen=True)
class _Written:
    """A load's rows and rejects, written but not yet visible: in the staging tables (bulk)
    or held in memory for a COPY inside the final transaction (direct)."""

    stats: Stats
    bulk: bool = False
    table: pa.Table | None = None
    parser: str | None = None  # FileResult.parser

    def publish(self, conn: psycopg.Connection, staging: Staging) -> None:
        if self.bulk:
            publish_bulk(conn, staging)
        elif self.table is not None:
            publish_direct(conn, staging, self.table)


def _write(
    spark: SparkSession,
    conn: psycopg.Connection,
    conninfo: dict,
    staging: Staging,
    file: CheckedFile,
    source: SourceFile,
    scan: Prescan,
) -> _Written:
    """Parse and write the rows: a bulk COPY into staging tables for a file of
    :func:`bulk_min_bytes` or more (vectorised when :func:`check_file` allowed it), a direct
    COPY at publish time for a smaller one."""
    if file.cmap is not None:
        chunks = plan_chunks(source.path, scan, pieces=_pieces(spark))
        layout = _layout(file, staging, source.name)
        stats = write_bulk_vectorised(conn, conninfo, staging, spark, source.path, chunks, layout)
        written = _Written(stats, bulk=True, parser="vectorised")
        expected_lines = file.expected_lines
    elif file.checked is None:
        return _Written(Stats())
    else:
        bulk = scan.size >= bulk_min_bytes()
        lines = copy_lines(
            file.checked,
            staging.entity,
            source_file=source.name,
            load_id=staging.load_id,
            lineage=not bulk,
        )
        parser = file.parsed.parser
        if bulk:
            written = _Written(write_bulk(conn, conninfo, staging, lines), bulk=True, parser=parser)
        else:
            table, stats = collect_direct(lines)
            written = _Written(stats, table=table, parser=parser)
        expected_lines = file.parsed.expected_lines
    check_room(file.base, written.stats.rows)
    verify_lines(expected_lines, written.stats)
    return written


def _index_and_recheck(
    conn: psycopg.Connection,
    staging: Staging,
    written: _Written,
    source: SourceFile,
    snap: Snapshot | None,
) -> None:
    """The file must still be the one that was hashed; a bulk load of a local file re-reads
    it while the server builds the id btree. (A file on a Hadoop file system is read through
    the SparkSession, which another thread does not see as active.)"""
    recheck = functools.partial(verify_unchanged, source.path, snap)
    if written.bulk and isinstance(source.path, Path):
        prebuild_indexes_while(conn, staging, recheck)
    else:
        recheck()


def _layout(file: CheckedFile, staging: Staging, source_file: str) -> Layout:
    """What the vectorised writers need to know of this file and load."""
    assert file.cmap is not None and file.expected_lines is not None
    return Layout(
        entity=staging.entity.name,
        positions=tuple(file.cmap.positions.items()),
        width=file.cmap.width,
        overflow_index=file.cmap.overflow_index,
        id_base=file.base,
        header_line=file.expected_lines[0] - 1,
        source_file=source_file,
        load_id=staging.load_id,
    )


def _publish(
    conn: psycopg.Connection,
    staging: Staging,
    written: _Written,
    entry: ledger.LedgerEntry,
    previous: ledger.PreviousLoad | None,
    ids: IdOutcome,
) -> None:
    """One transaction: the rows become visible, a forced reload retires the previous load,
    the ledger entry is written and the id high-water mark raised."""
    stats = written.stats
    with conn.transaction():
        # Publish first: publish_bulk builds the BRIN before taking the locks that
        # block readers, and removing the previous load (--force) takes such locks.
        written.publish(conn, staging)
        if previous is not None:
            remove_load(conn, entry.entity, previous.load_id)
            ledger.mark_replaced(conn, previous.load_id, entry.load_id)
        entry.status = "loaded"
        entry.rows_read, entry.rows_loaded = stats.rows, stats.loaded
        entry.rows_rejected, entry.rows_repaired = stats.rejected, stats.repaired
        entry.rejects_by_reason = dict(stats.by_reason)
        entry.id_min, entry.id_max = ids.id_min, ids.id_max
        ledger.insert(conn, entry)
        if ids.high_water is not None:
            ledger.raise_high_water(conn, entry.entity, ids.high_water)


def _mark_changed(entry: ledger.LedgerEntry, exc: FileChanged) -> None:
    entry.status, entry.reason = "failed", "changed_during_load"
    entry.error = f"changed_during_load: {exc}"


def _refuse_symlink(
    conninfo: dict, source: SourceFile, run: RunContext, clock: float
) -> FileResult:
    """A symbolic link is refused without opening, copying or quoting its target."""
    result = FileResult(source.entity, source.path, "rejected", content_hash="")
    with psycopg.connect(**conninfo, autocommit=True) as conn:
        entry = ledger.LedgerEntry(
            load_id=ledger.next_load_id(conn),
            entity=source.entity,
            source_file=source.name,
            source_path=str(source.path),
            content_hash="",
            size_bytes=os.lstat(source.path).st_size,
            status="rejected",
            started_at=ledger.db_now(conn),
            error="symlink: the file is a symbolic link; links are not followed, "
            "put the file itself in place",
            reason="symlink",
            mode=run.mode,
            stream_query_id=run.stream_query_id,
            stream_batch_id=run.stream_batch_id,
        )
        ledger.insert(conn, entry)
    result.load_id = entry.load_id
    _fill(result, entry)
    result.seconds = time.monotonic() - clock
    return result


def vectorised_eligible(source: SourceFile, scan: Prescan) -> bool:
    """The vectorised bulk path (records_arrow) reads the file from the Spark tasks with plain
    file I/O, so it takes local files large enough for the bulk path; CONDO_LOAD_VECTORISED=0
    turns it off (every file then takes the Spark path)."""
    if os.environ.get("CONDO_LOAD_VECTORISED", "1") == "0":
        return False
    return isinstance(source.path, Path) and scan.size >= bulk_min_bytes()


def _pieces(spark: SparkSession) -> int:
    """Chunks of the file, one writer (thread or Spark task) and one COPY stream each: one
    per local core, or the cluster's default parallelism."""
    cores = local_cores(spark)
    return cores if cores is not None else max(1, spark.sparkContext.defaultParallelism)


def verify_lines(expected_lines: tuple[int, int] | None, stats: Stats) -> None:
    """When line numbers came from the planned splits or the chunk plan, the loaded and
    rejected rows must carry exactly the lines after the header, each once: their count,
    least, greatest and sum must be those of ``first..last``."""
    if expected_lines is None:
        return
    first, last = expected_lines
    expected_rows = max(0, last - first + 1)
    if stats.rows == 0 and expected_rows == 0:
        return
    expected_sum = (first + last) * expected_rows // 2
    got = (stats.rows, stats.line_min, stats.line_max, stats.line_sum)
    if got != (expected_rows, first, last, expected_sum):
        raise RuntimeError(
            f"line numbering check failed: {stats.rows} rows on lines "
            f"{stats.line_min}..{stats.line_max} (sum {stats.line_sum}), expected "
            f"{expected_rows} on {first}..{last} (sum {expected_sum})"
        )


def _record_failure(conn: psycopg.Connection, entry: ledger.LedgerEntry, staging: Staging) -> bool:
    """Drop this load's staging tables and write the ledger entry; False if the database is
    unreachable (the caller re-raises the original error)."""
    try:
        if conn.info.transaction_status != psycopg.pq.TransactionStatus.IDLE:
            conn.rollback()
        drop_leftovers(conn, entry.entity)
        entry.rows_read = entry.rows_loaded = entry.rows_rejected = entry.rows_repaired = 0
        entry.rejects_by_reason = {}
        entry.id_min = entry.id_max = None
        ledger.insert(conn, entry)
        return True
    except psycopg.Error:
        return False


def _fill(result: FileResult, entry: ledger.LedgerEntry) -> None:
    result.status = entry.status
    result.rows_read, result.rows_loaded = entry.rows_read, entry.rows_loaded
    result.rows_rejected, result.rows_repaired = entry.rows_rejected, entry.rows_repaired
    result.rejects_by_reason = {k: v for k, v in entry.rejects_by_reason.items() if v}
    result.warnings = list(entry.warnings)
    result.error = entry.error
    result.reason = entry.reason
    result.duplicate_of = entry.duplicate_of
    result.id_min, result.id_max = entry.id_min, entry.id_max


def _mark_failed(
    entry: ledger.LedgerEntry, exc: Exception, source: SourceFile, snap: Snapshot | None
) -> None:
    """An error while the file was read or written. If the file changed meanwhile (e.g. it
    was truncated under the vectorised writers' reads), that is what the ledger says: the
    load is then retried as a changing file, not reported as a loader error."""
    entry.status = "failed"
    entry.error = short_error(exc)
    if snap is None:
        return
    try:
        verify_unchanged(source.path, snap)
    except FileChanged as change:
        _mark_changed(entry, change)
    except OSError:
        pass  # unreadable now: the original error stands


def _mark_rejected(
    entry: ledger.LedgerEntry, exc: FileRejected, source: SourceFile, snap: Snapshot | None
) -> None:
    entry.status = "rejected"
    entry.error = str(exc)
    try:  # a half-written file is not a bad file: it is retried, not rejected
        verify_unchanged(source.path, snap)
    except FileChanged as change:
        _mark_changed(entry, change)
