"""Load one file into PostgreSQL bronze: the per-file protocol.

1. Pre-scan the bytes (hash, size, UTF-8) outside any lock.
2. Take the entity's advisory lock (session level: a killed loader releases it with its
   connection), drop leftovers of killed runs, and look the hash up in the ledger.
3. Parse and validate with Spark, write rows and rejects (bulk staging or direct).
4. One transaction: publish rows and rejects, replace the previous load on ``--force``, write
   the ledger entry, raise the id high-water mark.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass

import psycopg
from pyspark.sql import SparkSession

from spark_loaders.domain import BY_NAME
from spark_loaders.ingest import ledger
from spark_loaders.ingest.copy_stream import Stats
from spark_loaders.ingest.ddl import LOCK_NAMESPACE, entity_lock_key
from spark_loaders.ingest.discover import SourceFile
from spark_loaders.ingest.file_checks import FileRejected, check_file
from spark_loaders.ingest.header import ColumnMap
from spark_loaders.ingest.ids import check_room, id_outcome
from spark_loaders.ingest.prescan import Prescan, prescan, raw_sha256
from spark_loaders.ingest.report import FileResult
from spark_loaders.ingest.sink_postgres import (
    Staging,
    collect_direct,
    drop_leftovers,
    publish_bulk,
    publish_direct,
    remove_load,
    write_bulk,
)
from spark_loaders.ingest.validate import copy_lines

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
    changed: str | None = None
    unreadable: str | None = None
    snap: Snapshot | None = None
    try:
        before = source.path.stat()
        scan = prescan(source.path)
        snap = snapshot_before(source.path, scan, before)
    except FileChanged as exc:
        changed = str(exc)
    except OSError as exc:
        unreadable = f"cannot read the file: {exc.strerror or exc}"
        scan = None
    if scan is None:
        scan = Prescan("", 0, None, False, False, (0,), 0, "")
    result = FileResult(source.entity, source.path, "failed", content_hash=scan.content_hash)
    with psycopg.connect(**conninfo, autocommit=True) as conn:
        conn.execute(
            "select pg_advisory_lock(%s, %s)", (LOCK_NAMESPACE, entity_lock_key(entity.name))
        )
        drop_leftovers(conn, entity.name)
        entry = ledger.LedgerEntry(
            load_id=ledger.next_load_id(conn),
            entity=entity.name,
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
        result.load_id = entry.load_id
        staging = Staging(entity, entry.load_id)
        previous = ledger.find_loaded(conn, entity.name, scan.content_hash, scan.sha256)

        def on_header(cmap: ColumnMap) -> None:
            entry.has_ids = cmap.has_ids
            entry.warnings = list(cmap.warnings)

        try:
            if unreadable is not None:
                entry.reason = "unreadable"
                raise OSError(unreadable)
            if changed is not None:
                raise FileChanged(changed)
            file = check_file(
                spark,
                source,
                scan,
                entity,
                previous=previous,
                force=force,
                high_water=lambda: ledger.high_water(conn, entity.name),
                on_header=on_header,
            )
            if file is None:
                entry.status = result.status = "skipped"
                entry.reason = "duplicate"
                entry.duplicate_of = result.duplicate_of = previous.load_id
                ledger.insert(conn, entry)
                return result
            stats = Stats()
            table = None
            bulk = False
            if file.checked is not None:
                lines = copy_lines(
                    file.checked, entity, source_file=source.name, load_id=entry.load_id
                )
                bulk = scan.size >= bulk_min_bytes()
                if bulk:
                    stats = write_bulk(conn, conninfo, staging, lines)
                else:
                    table, stats = collect_direct(lines)
                check_room(file.base, stats.rows)
                verify_lines(file.parsed, stats)
            ids = id_outcome(file.base, stats)
            # Everything is parsed and written (not yet visible): the bytes must still be
            # those that were hashed, or the rows may come from a half-written file.
            verify_unchanged(source.path, snap)
            with conn.transaction():
                # Publish first: publish_bulk builds the BRIN before taking the locks that
                # block readers, and removing the previous load (--force) takes such locks.
                if bulk:
                    publish_bulk(conn, staging)
                elif table is not None:
                    publish_direct(conn, staging, table)
                if previous is not None:
                    remove_load(conn, entity.name, previous.load_id)
                    ledger.mark_replaced(conn, previous.load_id, entry.load_id)
                entry.status = "loaded"
                entry.rows_read, entry.rows_loaded = stats.rows, stats.loaded
                entry.rows_rejected, entry.rows_repaired = stats.rejected, stats.repaired
                entry.rejects_by_reason = dict(stats.by_reason)
                entry.id_min, entry.id_max = ids.id_min, ids.id_max
                ledger.insert(conn, entry)
                if ids.high_water is not None:
                    ledger.raise_high_water(conn, entity.name, ids.high_water)
            _fill(result, entry)
            return result
        except FileChanged as exc:
            entry.status, entry.reason = "failed", "changed_during_load"
            entry.error = f"changed_during_load: {exc}"
            _record_failure(conn, entry, staging)
            _fill(result, entry)
            return result
        except FileRejected as exc:
            entry.status = "rejected"
            entry.error = str(exc)
            try:  # a half-written file is not a bad file: it is retried, not rejected
                verify_unchanged(source.path, snap)
            except FileChanged as change:
                entry.status, entry.reason = "failed", "changed_during_load"
                entry.error = f"changed_during_load: {change}"
            _record_failure(conn, entry, staging)
            _fill(result, entry)
            return result
        except Exception as exc:
            entry.status = "failed"
            entry.error = short_error(exc)
            if not _record_failure(conn, entry, staging):
                raise
            _fill(result, entry)
            return result
        finally:
            result.seconds = time.monotonic() - clock


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


def verify_lines(parsed, stats: Stats) -> None:
    """When line numbers came from the planned splits, the loaded and rejected rows must
    carry exactly the lines after the header, each once."""
    if parsed.expected_lines is None:
        return
    first, last = parsed.expected_lines
    expected_rows = max(0, last - first + 1)
    if stats.rows == 0 and expected_rows == 0:
        return
    if (stats.rows, stats.line_min, stats.line_max) != (expected_rows, first, last):
        raise RuntimeError(
            f"line numbering check failed: {stats.rows} rows on lines "
            f"{stats.line_min}..{stats.line_max}, expected {expected_rows} on {first}..{last}"
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
