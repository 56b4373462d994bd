"""The ``foreachBatch`` function: hand a micro-batch's files to the batch loader, then record
the micro-batch.

Exactly-once rests on the loader, not on Spark: each file commits its rows, its rejects and
its ``ops.loads`` entry in one PostgreSQL transaction, and a file whose bytes are already
``loaded`` is skipped. When Spark replays an uncommitted micro-batch after a crash (same batch
id, same files), the files that committed before the crash are skipped and the others are
loaded, so bronze ends up with every row exactly once. See docs/streaming.md.
"""

from __future__ import annotations

import os
import shutil
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from spark_loaders.domain import POSTGRES_TARGET
from spark_loaders.errors import CondoError
from spark_loaders.fault_injection import kill_point
from spark_loaders.streaming import ledger, retries
from spark_loaders.streaming.ledger import BatchRecord, FileOutcome
from spark_loaders.streaming.source import local_path

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession


class StreamFailed(CondoError):
    """A micro-batch could not be committed; nothing of it is marked done in the checkpoint."""

    exit_code = 1


def is_connection_error(exc: BaseException) -> bool:
    """PostgreSQL unreachable or gone away (server restart, network), as opposed to a bug."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        name = type(current).__name__
        module = type(current).__module__
        if name in ("OperationalError", "InterfaceError") and module.startswith("psycopg"):
            return True
        text = str(current)
        if any(
            marker in text
            for marker in (
                "connection refused",
                "Connection refused",
                "server closed the connection",
                "terminating connection due to administrator command",
                "the database system is shutting down",
                "the database system is starting up",
                "consuming input failed",
                "PSQLException: The connection attempt failed",
                "An I/O error occurred while sending to the backend",
            )
        ):
            return True
        current = current.__cause__ or current.__context__
    return False


@dataclass
class BatchSettings:
    rejected_dir: Path | None
    db_retry_seconds: float = 60.0
    retry_pause_seconds: float = 2.0
    settle_seconds: float = 2.0  # size and mtime unchanged this long before a file is loaded
    settle_budget_seconds: float = 30.0  # then the file waits in ops.stream_retries instead
    retry_base_seconds: float = 5.0  # backoff of a failed file: base, 2 base, ... <= 5 min
    archive: str | None = None  # where Spark archives committed files (to find a retry)


Ingest = Callable[..., Any]
Connect = Callable[[], Any]


class BatchProcessor:
    """Callable given to ``foreachBatch``. It keeps no state that correctness depends on:
    everything needed to resume lives in the checkpoint and in PostgreSQL."""

    def __init__(
        self,
        spark: SparkSession,
        settings: BatchSettings,
        *,
        query_id: Callable[[], str],
        connect: Connect,
        ingest: Ingest | None = None,
        on_batch: Callable[[BatchRecord], None] | None = None,
        log: Callable[[str], None] = print,
    ) -> None:
        self.spark = spark
        self.settings = settings
        self._query_id = query_id
        self._cached_query_id: str | None = None
        self._connect = connect
        self._ingest = ingest
        self._on_batch = on_batch
        self._log = log
        self.in_flight = threading.Event()
        self.fatal_error: str | None = None
        # Micro-batches (Spark's thread) and retries (the main loop) never load at once.
        self.load_lock = threading.Lock()

    @property
    def query_id(self) -> str:
        if self._cached_query_id is None:
            self._cached_query_id = self._query_id()
        return self._cached_query_id

    def ingest(self) -> Ingest:
        if self._ingest is None:
            from spark_loaders.ingest.api import ingest_files

            self._ingest = ingest_files
        return self._ingest

    # -- the foreachBatch entry point -------------------------------------------------
    def __call__(self, batch: DataFrame, batch_id: int) -> None:
        self.in_flight.set()
        try:
            self._process(batch, int(batch_id))
        except StreamFailed as exc:
            self.fatal_error = str(exc)
            raise
        except Exception as exc:
            self.fatal_error = f"micro-batch {batch_id} failed: {type(exc).__name__}: {exc}"
            raise
        finally:
            self.in_flight.clear()

    def _process(self, batch: DataFrame, batch_id: int) -> None:
        started = datetime.now(UTC)
        t0 = time.monotonic()
        rows = batch.select("path", "modified_at").collect()
        paths = sorted(local_path(r["path"]) for r in rows)
        oldest = min((r["modified_at"] for r in rows), default=None)
        if not paths:
            return
        query_id = self.query_id
        kill_point("stream.before_write", batch_id)  # test-only, see fault_injection
        loadable, unusable = split_files(paths)
        settled, unsettled = retries.wait_settled(
            loadable, self.settings.settle_seconds, self.settings.settle_budget_seconds
        )
        with self.load_lock:
            outcomes = self._ingest_with_retry(settled, query_id, batch_id) if settled else []
            outcomes.extend(self._defer(unsettled, query_id, batch_id))
            self._queue_failures(outcomes, query_id, batch_id)
        outcomes.extend(unusable)
        committed = datetime.now(UTC)
        latency_ms = None
        if oldest is not None:
            # PySpark hands timestamps over as naive local times; astimezone reads them so.
            oldest_utc = oldest.astimezone(UTC)
            latency_ms = max(0, int((committed - oldest_utc).total_seconds() * 1000))
        rec = BatchRecord(
            query_id=query_id,
            batch_id=batch_id,
            started_at=started,
            duration_ms=int((time.monotonic() - t0) * 1000),
            latency_ms=latency_ms,
            files=outcomes,
        )
        attempts = self._with_db_retry(
            lambda: self._record(rec), f"recording micro-batch {batch_id}"
        )
        kill_point("stream.after_write", batch_id)  # test-only, see fault_injection
        self._copy_rejected(rec)
        self._log(format_batch_line(rec, attempts))
        if self._on_batch is not None:
            self._on_batch(rec)

    # -- loading ----------------------------------------------------------------------
    def _ingest_with_retry(
        self, paths: list[str], query_id: str, batch_id: int
    ) -> list[FileOutcome]:
        from spark_loaders.ingest.api import StreamContext

        def attempt() -> list[FileOutcome]:
            report = self.ingest()(
                self.spark,
                paths,
                target=POSTGRES_TARGET,
                mode="stream",
                stream=StreamContext(query_id=query_id, batch_id=batch_id),
                progress=False,
            )
            outcomes = [_outcome(f) for f in report.files]
            # A lost connection fails the whole micro-batch (retried, then the stream stops);
            # any other failure is the file's own and goes to ops.stream_retries.
            lost = [o for o in outcomes if o.status == "failed" and _error_is_connection(o.error)]
            if lost:
                raise _FilesFailed(lost)
            return outcomes

        outcomes = self._with_db_retry(attempt, f"micro-batch {batch_id}")
        return self._claim_earlier_attempt(outcomes, query_id, batch_id)

    def _claim_earlier_attempt(
        self, outcomes: list[FileOutcome], query_id: str, batch_id: int
    ) -> list[FileOutcome]:
        """On a replay, files committed by the interrupted attempt come back as skipped; count
        them as this batch's loads again, so the batch row has the same totals as if no crash
        had happened."""
        if not any(o.status == "skipped" for o in outcomes):
            return outcomes

        def lookup() -> dict[str, tuple[int, int, int, int]]:
            with self._connect() as conn:
                return ledger.earlier_attempt(conn, query_id, batch_id)

        earlier = self._with_db_retry(lookup, f"micro-batch {batch_id}")
        for o in outcomes:
            if o.status == "skipped" and o.path in earlier:
                load_id, read, loaded, rejected = earlier[o.path]
                o.status, o.load_id, o.replayed = "loaded", load_id, True
                o.rows_read, o.rows_loaded, o.rows_rejected = read, loaded, rejected
        return outcomes

    # -- files not loaded yet: deferred (still being written) or failed ----------------
    def _defer(self, paths: list[str], query_id: str, batch_id: int) -> list[FileOutcome]:
        from spark_loaders.ingest.discover import entity_of

        outcomes = []
        for path in paths:
            error = (
                f"still being written: size or mtime changed within {self.settings.settle_seconds:g} s "
                f"for {self.settings.settle_budget_seconds:g} s; retried later"
            )
            outcomes.append(
                FileOutcome(
                    path=path,
                    entity=entity_of(Path(path).name),
                    status="deferred",
                    error=error,
                    reason=retries.NOT_SETTLED,
                )
            )
        return outcomes

    def _queue_failures(
        self, outcomes: list[FileOutcome], query_id: str, batch_id: int | None
    ) -> None:
        """Failed and deferred files go to ops.stream_retries; files that made it leave it."""
        with self._connect() as conn:
            for o in outcomes:
                if o.status in ("failed", "deferred"):
                    attempts = retries.remember(
                        conn,
                        path=o.path,
                        entity=o.entity,
                        reason=o.reason or "failed",
                        error=o.error,
                        query_id=query_id,
                        batch_id=batch_id,
                        base_seconds=self.settings.retry_base_seconds,
                    )
                    wait = retries.backoff_seconds(attempts, self.settings.retry_base_seconds)
                    self._log(
                        f"{Path(o.path).name}: {o.status} ({o.error}); "
                        f"attempt {attempts}, next try in {wait:g} s"
                    )
                else:
                    retries.forget(conn, o.path)

    def retry_due(self, *, every: bool = False) -> int:
        """Retry the queued files whose backoff has elapsed (all of them with ``every``).
        Returns how many are still queued. Never raises for a database that is down: the
        next call tries again."""
        try:
            with self.load_lock:
                return self._retry_due(every)
        except Exception as exc:
            if not is_connection_error(exc):
                raise
            self._log(f"retrying queued files: PostgreSQL unavailable ({first_line(exc)})")
            return -1

    def _retry_due(self, every: bool) -> int:
        from spark_loaders.ingest.api import StreamContext

        with self._connect() as conn:
            pending = retries.due(conn, every=every)
        if not pending:
            with self._connect() as conn:
                return retries.count(conn)
        query_id = self.query_id
        located: dict[str, retries.Pending] = {}
        outcomes: list[FileOutcome] = []
        for item in pending:
            where = retries.locate(item.path, self.settings.archive)
            if where is None:
                outcomes.append(
                    FileOutcome(
                        path=item.path,
                        entity=item.entity,
                        status="failed",
                        error="the file is neither in the landing nor in the archive directory",
                        reason="missing",
                    )
                )
            else:
                located[where] = item
        settled, unsettled = retries.wait_settled(
            list(located), self.settings.settle_seconds, self.settings.settle_seconds * 3
        )
        for where in unsettled:
            outcomes.extend(self._defer([located[where].path], query_id, -1))
        for where in settled:
            item = located[where]
            report = self.ingest()(
                self.spark,
                [where],
                target=POSTGRES_TARGET,
                mode="stream",
                stream=StreamContext(query_id=query_id, batch_id=item.batch_id or 0),
                progress=False,
            )
            for result in report.files:
                o = _outcome(result)
                o.path = item.path  # the queue is keyed by the landing path
                outcomes.append(o)
                if o.status != "failed":
                    self._log(f"{Path(item.path).name}: retry {item.attempts}: {o.status}")
        self._queue_failures(outcomes, query_id, None)
        with self._connect() as conn:
            return retries.count(conn)

    def _record(self, rec: BatchRecord) -> int:
        with self._connect() as conn:
            return ledger.record(conn, rec)

    def _with_db_retry(self, action: Callable[[], Any], what: str) -> Any:
        """Run ``action``; while PostgreSQL is unreachable, retry for ``db_retry_seconds``. Every
        action here is idempotent (loaded files are skipped, the batch row is an upsert)."""
        deadline = time.monotonic() + self.settings.db_retry_seconds
        announced = False
        while True:
            try:
                return action()
            except _FilesFailed as exc:
                retryable = all(_error_is_connection(o.error) for o in exc.failed)
                problem = "; ".join(f"{Path(o.path).name}: {o.error}" for o in exc.failed)
                if not retryable or time.monotonic() > deadline:
                    raise StreamFailed(
                        f"{what}: {problem}. The micro-batch is not committed in the checkpoint, "
                        "so nothing is lost: fix the cause and restart `condo stream`"
                    ) from None
            except Exception as exc:
                if not is_connection_error(exc):
                    raise
                if time.monotonic() > deadline:
                    raise StreamFailed(
                        f"{what}: PostgreSQL unreachable for {self.settings.db_retry_seconds:.0f} s "
                        f"({first_line(exc)}). The micro-batch is not committed in the checkpoint, "
                        "so nothing is lost: restart `condo stream` once the database is back"
                    ) from None
                problem = first_line(exc)
            if not announced:
                self._log(f"{what}: PostgreSQL unavailable ({problem}); retrying")
                announced = True
            time.sleep(self.settings.retry_pause_seconds)

    # -- rejected files ---------------------------------------------------------------
    def _copy_rejected(self, rec: BatchRecord) -> None:
        """Put a copy of each whole-file reject (hard link when possible) and the reason in
        ``rejected/``. The original stays where Spark tracks it and is archived with the rest
        of the batch; moving it behind Spark's back would break a replay."""
        target = self.settings.rejected_dir
        if target is None:
            return
        for o in rec.files:
            source = Path(o.path)
            if o.status != "rejected":
                continue
            if source.is_symlink():
                # Never follow a link: no copy of its target, only the reason.
                target.mkdir(parents=True, exist_ok=True)
                reason = target / f"{source.name}.reason.txt"
            elif source.is_file():
                target.mkdir(parents=True, exist_ok=True)
                dest = _free_name(target, source)
                try:
                    os.link(o.path, dest, follow_symlinks=False)
                except OSError:
                    shutil.copy2(o.path, dest, follow_symlinks=False)
                reason = dest.with_name(dest.name + ".reason.txt")
            else:
                continue
            reason.write_text(
                f"file: {o.path}\nentity: {o.entity}\nload_id: {o.load_id}\n"
                f"query_id: {rec.query_id}\nbatch_id: {rec.batch_id}\nreason: {o.error}\n"
            )


def split_files(paths: list[str]) -> tuple[list[str], list[FileOutcome]]:
    """Files the loader can take, and outcomes for the others: a name that matches no entity
    (the loader refuses it by name) or a file that disappeared from the landing directory
    before it could be loaded (someone deleted it; Spark still lists it on a replay)."""
    from spark_loaders.ingest.discover import entity_of

    loadable: list[str] = []
    unusable: list[FileOutcome] = []
    for path in paths:
        name = Path(path).name
        if entity_of(name) is None:
            error = "the file name does not start with an entity name"
            unusable.append(FileOutcome(path=path, entity=None, status="rejected", error=error))
        elif "://" not in path and not (Path(path).is_file() or Path(path).is_symlink()):
            error = "the file disappeared from the landing directory before it was loaded"
            unusable.append(FileOutcome(path=path, entity=None, status="missing", error=error))
        else:
            loadable.append(path)
    return loadable, unusable


class _FilesFailed(Exception):
    def __init__(self, failed: list[FileOutcome]) -> None:
        super().__init__(f"{len(failed)} file(s) failed")
        self.failed = failed


def _error_is_connection(error: str | None) -> bool:
    return bool(error) and is_connection_error(Exception(error))


def _outcome(result: Any) -> FileOutcome:
    return FileOutcome(
        path=str(result.path),
        entity=getattr(result, "entity", None),
        status=str(result.status),
        rows_read=int(result.rows_read or 0),
        rows_loaded=int(result.rows_loaded or 0),
        rows_rejected=int(result.rows_rejected or 0),
        load_id=getattr(result, "load_id", None),
        error=getattr(result, "error", None),
        reason=getattr(result, "reason", None),
    )


def _free_name(directory: Path, source: Path) -> Path:
    """``directory/name`` unless taken by other bytes; then ``name.1``, ``name.2``..."""
    candidate = directory / source.name
    n = 0
    while candidate.exists():
        if candidate.stat().st_size == source.stat().st_size and _same_bytes(candidate, source):
            candidate.unlink()
            break
        n += 1
        candidate = directory / f"{source.stem}.{n}{source.suffix}"
    return candidate


def _same_bytes(a: Path, b: Path) -> bool:
    return a.read_bytes() == b.read_bytes()


def first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0][:200] if text else type(exc).__name__


def format_batch_line(rec: BatchRecord, attempts: int = 1) -> str:
    """One concise line per micro-batch."""
    secs = rec.duration_ms / 1000
    rate = rec.rows_read / secs if secs > 0 else 0.0
    missing = rec.count("missing")
    waiting = rec.count("failed") + rec.count("deferred")
    parts = [
        f"batch {rec.batch_id}: {len(rec.files)} file(s)",
        f"{rec.count('loaded')} loaded",
        f"{rec.count('skipped')} skipped",
        f"{rec.count('rejected')} rejected",
        f"| rows {rec.rows_read:,} in, {rec.rows_loaded:,} loaded, {rec.rows_rejected:,} rejected",
        f"| {rate:,.0f} rows/s, {secs:.2f} s",
    ]
    if rec.latency_ms is not None:
        parts.append(f"| latency {rec.latency_ms / 1000:.2f} s")
    if missing:
        parts.append(f"| {missing} MISSING (deleted before loading)")
    if waiting:
        parts.append(f"| {waiting} FAILED or not settled, queued for retry (ops.stream_retries)")
    if attempts > 1:
        parts.append(f"| replay (attempt {attempts})")
    return " ".join(parts[:1]) + ": " + ", ".join(parts[1:4]) + " " + " ".join(parts[4:])
