"""Build, run and stop the streaming query; shared by ``condo stream`` and ``stream_files.py``.

One query watches the landing directory for all four entities. Each micro-batch's file list
goes to the batch loader through :class:`~spark_loaders.streaming.batch.BatchProcessor`.
``--available-now`` drains the backlog in bounded micro-batches and exits; otherwise the
query runs on a processing-time trigger until SIGINT or SIGTERM, and then stops once the
current micro-batch has committed (a second signal stops at once, which is still safe).
"""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import logging
import os
import signal
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from spark_loaders import spark_internals
from spark_loaders.errors import CondoError
from spark_loaders.jobs import DEFAULT_MAX_FILES
from spark_loaders.logs import setup_logging
from spark_loaders.paths import landing_dir, project_root, state_dir
from spark_loaders.streaming import ledger, retries
from spark_loaders.streaming.batch import BatchProcessor, BatchSettings, StreamFailed, first_line
from spark_loaders.streaming.progress import ProgressListener, StatusBoard, serve_status
from spark_loaders.streaming.query_id import is_local, read_query_id
from spark_loaders.streaming.source import CSV_GLOB, check_layout, landing_files, local_path

logger = logging.getLogger(__name__)

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

    from spark_loaders.connection import ConnectionInfo

QUERY_NAME = "condo_stream"


def default_checkpoint() -> Path:
    return state_dir() / "stream" / "checkpoint"


def default_status_file() -> Path:
    return state_dir() / "stream" / "status.json"


def default_archive() -> Path:
    return project_root() / "data" / "processed"


def default_rejected() -> Path:
    return project_root() / "data" / "rejected"


@dataclass(frozen=True)
class StreamConfig:
    landing: str
    checkpoint: str
    archive: str
    rejected: Path | None
    status_file: Path | None
    trigger_seconds: float = 1.0
    available_now: bool = False
    max_files_per_trigger: int = DEFAULT_MAX_FILES
    db_retry_seconds: float = 60.0
    http_port: int | None = None
    settle_seconds: float = 2.0
    retry_base_seconds: float = 5.0

    def describe(self) -> dict[str, Any]:
        return {
            "landing": self.landing,
            "checkpoint": self.checkpoint,
            "archive": self.archive,
            "rejected": str(self.rejected) if self.rejected else None,
            "trigger": "available-now" if self.available_now else f"{self.trigger_seconds:g} s",
            "max_files_per_trigger": self.max_files_per_trigger,
            "settle_seconds": self.settle_seconds,
        }


@dataclass
class RunResult:
    query_id: str | None
    totals: dict[str, int] = field(default_factory=dict)
    stopped_by_signal: bool = False
    pending_retries: int = 0  # files in ops.stream_retries when the run ended

    @property
    def exit_code(self) -> int:
        return 1 if self.totals.get("files_rejected", 0) or self.pending_retries > 0 else 0


def _location(value: str | None, default: Path) -> str:
    if value is None:
        return str(default)
    return value if not is_local(value) else str(Path(local_path(value)).resolve())


def config_from_args(args: argparse.Namespace) -> StreamConfig:
    if args.trigger is not None and args.trigger <= 0:
        raise CondoError("--trigger must be a positive number of seconds")
    if args.max_files_per_trigger < 1:
        raise CondoError("--max-files-per-trigger must be at least 1")
    if args.settle_seconds < 0:
        raise CondoError("--settle-seconds must not be negative")
    landing = _location(args.landing, landing_dir())
    if args.landing is None:
        landing_dir().mkdir(parents=True, exist_ok=True)
    return StreamConfig(
        landing=landing,
        checkpoint=_location(args.checkpoint, default_checkpoint()),
        archive=_location(args.archive, default_archive()),
        rejected=Path(args.rejected).resolve() if args.rejected else default_rejected(),
        status_file=Path(args.status_file).resolve() if args.status_file else default_status_file(),
        trigger_seconds=args.trigger or 1.0,
        available_now=bool(args.available_now),
        max_files_per_trigger=args.max_files_per_trigger,
        db_retry_seconds=args.db_retry_seconds,
        http_port=args.http_port,
        settle_seconds=args.settle_seconds,
    )


def _connector(info: ConnectionInfo) -> Callable[[], Any]:
    import psycopg

    def connect() -> Any:
        return psycopg.connect(**info.psycopg_kwargs(), connect_timeout=5)

    return connect


def prepare_database(connect: Callable[[], Any]) -> None:
    """Create the loader's schema and ``ops.stream_batches`` (idempotent)."""
    try:
        from spark_loaders.ingest.ddl import ensure_schema
    except ImportError as exc:
        raise CondoError(
            f"the batch loader (spark_loaders.ingest) is not available: {exc}"
        ) from None
    import psycopg

    try:
        with connect() as conn:
            ensure_schema(conn)
            ledger.ensure_table(conn)
            retries.ensure_table(conn)
    except psycopg.OperationalError as exc:
        raise CondoError(f"cannot reach PostgreSQL: {first_line(exc)}") from None
    except psycopg.Error as exc:
        raise CondoError(f"cannot prepare the ops/bronze schemas: {first_line(exc)}") from None


def run_stream(
    spark: SparkSession,
    cfg: StreamConfig,
    *,
    stop: threading.Event | None = None,
    force_stop: threading.Event | None = None,
    ingest: Callable[..., Any] | None = None,
    log: Callable[[str], None] = print,
) -> RunResult:
    """Run the query until it drains (available-now) or ``stop`` is set; raise
    :class:`StreamFailed` if a micro-batch could not be committed."""
    with checkpoint_lock(cfg.checkpoint):
        return _run_locked(spark, cfg, stop=stop, force_stop=force_stop, ingest=ingest, log=log)


@contextlib.contextmanager
def checkpoint_lock(checkpoint: str) -> Iterator[None]:
    """One stream per checkpoint: two would interleave micro-batches in one offset log. The
    lock is an flock, so a killed stream never leaves it behind. Local checkpoints only."""
    if not is_local(checkpoint):
        yield
        return
    root = Path(local_path(checkpoint))
    root.mkdir(parents=True, exist_ok=True)
    fh = (root / ".condo-stream.lock").open("a+")
    try:
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            fh.seek(0)
            holder = fh.read().strip() or "another process"
            raise CondoError(
                f"another condo stream ({holder}) is using the checkpoint {root}; "
                "run one stream per checkpoint"
            ) from None
        fh.seek(0)
        fh.truncate()
        fh.write(f"pid {os.getpid()}\n")
        fh.flush()
        yield
    finally:
        fh.close()


def _run_locked(
    spark: SparkSession,
    cfg: StreamConfig,
    *,
    stop: threading.Event | None,
    force_stop: threading.Event | None,
    ingest: Callable[..., Any] | None,
    log: Callable[[str], None],
) -> RunResult:
    from spark_loaders import connection

    stop = stop or threading.Event()
    force_stop = force_stop or threading.Event()
    check_layout(cfg.landing, cfg.archive)
    connect = _connector(connection.resolve("loader"))
    prepare_database(connect)

    board = StatusBoard(cfg.status_file, config=cfg.describe())
    processor = _processor(spark, cfg, connect, board, ingest, log)
    listener = ProgressListener(board)
    spark.streams.addListener(listener)
    server = serve_status(board, cfg.http_port) if cfg.http_port else None
    try:
        query = _start_query(spark, cfg, processor)
        query_id = str(query.id)
        board.update(query_id=query_id)
        mode = (
            "available-now"
            if cfg.available_now
            else f"trigger {cfg.trigger_seconds:g} s, until SIGINT/SIGTERM"
        )
        log(
            f"condo stream: watching {cfg.landing} ({mode}, <= {cfg.max_files_per_trigger} files "
            f"per micro-batch); checkpoint {cfg.checkpoint}; query id {query_id}"
        )
        stopped_by_signal = _supervise(query, processor, board, cfg, connect, stop, force_stop, log)
        error = query.exception()
        if error is not None:
            message = processor.fatal_error or first_line(error)
            board.update(state="failed", error=message)
            raise StreamFailed(message)
        return _wrap_up(processor, board, cfg, query_id, stopped_by_signal, log)
    finally:
        _drain_listener_bus(spark)
        spark.streams.removeListener(listener)
        if server is not None:
            server.shutdown()


def _processor(
    spark: SparkSession,
    cfg: StreamConfig,
    connect: Callable[[], Any],
    board: StatusBoard,
    ingest: Callable[..., Any] | None,
    log: Callable[[str], None],
) -> BatchProcessor:
    """The foreachBatch handler: loads each micro-batch's files and reports to ``board``."""
    return BatchProcessor(
        spark,
        BatchSettings(
            rejected_dir=cfg.rejected,
            db_retry_seconds=cfg.db_retry_seconds,
            settle_seconds=cfg.settle_seconds,
            retry_base_seconds=cfg.retry_base_seconds,
            archive=local_path(cfg.archive) if is_local(cfg.archive) else None,
        ),
        query_id=lambda: read_query_id(cfg.checkpoint, spark),
        connect=connect,
        ingest=ingest,
        on_batch=board.add_batch,
        log=log,
    )


def _start_query(spark: SparkSession, cfg: StreamConfig, processor: BatchProcessor) -> Any:
    """Start the file-listing query on its checkpoint, with the configured trigger."""
    files = landing_files(
        spark, cfg.landing, archive=cfg.archive, max_files_per_trigger=cfg.max_files_per_trigger
    )
    writer = (
        files.writeStream.queryName(QUERY_NAME)
        .option("checkpointLocation", cfg.checkpoint)
        .foreachBatch(processor)
    )
    if cfg.available_now:
        writer = writer.trigger(availableNow=True)
    else:
        writer = writer.trigger(processingTime=f"{int(cfg.trigger_seconds * 1000)} milliseconds")
    return writer.start()


def _wrap_up(
    processor: BatchProcessor,
    board: StatusBoard,
    cfg: StreamConfig,
    query_id: str,
    stopped_by_signal: bool,
    log: Callable[[str], None],
) -> RunResult:
    """After a clean stop: one more try for queued files, then the run's totals."""
    # Files still queued get one more try before the run ends (an available-now run
    # retries what earlier runs left, whatever their backoff).
    pending = processor.retry_due(every=cfg.available_now)
    board.update(state="stopped", pending_retries=max(pending, 0))
    totals = board.snapshot()["totals"]
    log(
        f"condo stream: stopped after {totals['batches']} micro-batch(es): "
        f"{totals['files']} file(s) ({totals['files_loaded']} loaded, "
        f"{totals['files_skipped']} skipped, {totals['files_rejected']} rejected), "
        f"{totals['rows_loaded']:,} rows loaded, {totals['rows_rejected']:,} rejected"
    )
    if pending > 0:
        log(
            f"condo stream: {pending} file(s) not loaded yet, queued for retry in "
            "ops.stream_retries (see condo monitor)"
        )
    return RunResult(
        query_id=query_id,
        totals=totals,
        stopped_by_signal=stopped_by_signal,
        pending_retries=max(pending, 0),
    )


def _drain_listener_bus(spark: SparkSession, timeout_ms: int = 5000) -> None:
    """Let queued progress events reach the Python listener before it is removed; otherwise a
    late event can hit a Python process that is already exiting."""
    with contextlib.suppress(Exception):
        spark_internals.wait_for_listener_bus(spark, timeout_ms)


def _supervise(
    query: Any,
    processor: BatchProcessor,
    board: StatusBoard,
    cfg: StreamConfig,
    connect: Callable[[], Any],
    stop: threading.Event,
    force_stop: threading.Event,
    log: Callable[[str], None],
) -> bool:
    """Wait for the query to end; on ``stop``, let the running micro-batch finish and commit,
    then stop the query. Returns True when stopped on request."""
    from pyspark.errors import StreamingQueryException

    watcher = IgnoredFileWatcher(cfg, connect, board, log)
    retrier = RetryTimer(board)
    while query.isActive:
        if stop.is_set():
            log("condo stream: stopping after the current micro-batch (signal again to stop now)")
            while query.isActive and not force_stop.is_set():
                status = query.status
                if not processor.in_flight.is_set() and not status.get("isTriggerActive"):
                    break
                time.sleep(0.05)
            query.stop()
            return True
        try:
            query.awaitTermination(0.5)
        except StreamingQueryException:
            break  # reported by the caller through query.exception()
        watcher.maybe_check(processor)
        retrier.maybe_retry(processor)
    return False


class RetryTimer:
    """Between micro-batches, retry the queued files whose backoff has elapsed."""

    interval_seconds = 1.0

    def __init__(self, board: StatusBoard) -> None:
        self.board = board
        self.next_check = 0.0

    def maybe_retry(self, processor: BatchProcessor) -> None:
        if time.monotonic() < self.next_check or processor.in_flight.is_set():
            return
        self.next_check = time.monotonic() + self.interval_seconds
        pending = processor.retry_due()
        if pending >= 0:
            self.board.update(pending_retries=pending)


class IgnoredFileWatcher:
    """Warn about files Spark's file source will never pick up: it remembers files by path,
    so a file dropped again under a name this query already ingested is silently ignored."""

    interval_seconds = 10.0

    def __init__(
        self,
        cfg: StreamConfig,
        connect: Callable[[], Any],
        board: StatusBoard,
        log: Callable[[str], None],
    ) -> None:
        self.cfg = cfg
        self.connect = connect
        self.board = board
        self.log = log
        self.next_check = time.monotonic() + self.interval_seconds
        self.reported: set[tuple[str, float]] = set()

    def maybe_check(self, processor: BatchProcessor) -> None:
        if time.monotonic() < self.next_check or not is_local(self.cfg.landing):
            return
        self.next_check = time.monotonic() + self.interval_seconds
        with contextlib.suppress(Exception):
            self.check(processor.query_id)

    def check(self, query_id: str) -> list[str]:
        candidates = {
            str(p.resolve()): p.stat().st_mtime for p in _landing_csvs(Path(self.cfg.landing))
        }
        if not candidates:
            return []
        with self.connect() as conn:
            rows = conn.execute(
                "select source_path, max(finished_at) from ops.loads "
                "where stream_query_id = %s and source_path = any(%s) group by source_path",
                (query_id, list(candidates)),
            ).fetchall()
        ignored = []
        for path, finished in rows:
            mtime = candidates[path]
            if finished is not None and mtime > finished.timestamp():
                ignored.append(path)
                if (path, mtime) not in self.reported:
                    self.reported.add((path, mtime))
                    when = datetime.fromtimestamp(finished.timestamp(), UTC).isoformat()
                    self.log(
                        f"condo stream: WARNING {path} reuses the name of a file this stream "
                        f"already ingested ({when}); Spark ignores re-used names, so drop it "
                        "under a new name (e.g. with a timestamp)"
                    )
        self.board.update(ignored_files=sorted(ignored))
        return ignored


def _landing_csvs(landing: Path) -> Iterator[Path]:
    for p in landing.iterdir():
        if p.is_file() and p.suffix.lower() == ".csv" and not p.name.startswith((".", "_")):
            yield p


@contextlib.contextmanager
def graceful_signals() -> Iterator[tuple[threading.Event, threading.Event]]:
    """SIGINT/SIGTERM set ``stop``; a second one sets ``force_stop`` too."""
    stop, force = threading.Event(), threading.Event()

    def handler(signum: int, _frame: Any) -> None:
        if stop.is_set():
            force.set()
        stop.set()

    previous = {s: signal.signal(s, handler) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield stop, force
    finally:
        for s, h in previous.items():
            signal.signal(s, h)


def main(args: argparse.Namespace) -> int:
    """Entry point for ``condo stream`` and ``spark-submit spark_loaders/stream_files.py``."""
    from spark_loaders import connection
    from spark_loaders.spark_master import apply_master
    from spark_loaders.spark_session import get_spark, under_spark_submit

    setup_logging()
    apply_master(args)
    cfg = config_from_args(args)
    # Fail fast, before paying for Spark's start-up, on a bad layout or an unreachable database.
    check_layout(cfg.landing, cfg.archive)
    prepare_database(_connector(connection.resolve("loader")))
    if not under_spark_submit():
        # One line per micro-batch, not Spark's console progress bars in between.
        os.environ.setdefault(
            "PYSPARK_SUBMIT_ARGS", "--conf spark.ui.showConsoleProgress=false pyspark-shell"
        )
    from pyspark.sql import SparkSession

    with graceful_signals() as (stop, force):
        owned = SparkSession.getActiveSession() is None
        spark = get_spark("condo-stream")
        try:
            result = run_stream(spark, cfg, stop=stop, force_stop=force, log=_log)
        finally:
            if owned:  # a session handed in (spark-submit's, a test's) is its owner's to stop
                spark.stop()
    if result.totals.get("files_rejected"):
        _log(
            f"condo stream: {result.totals['files_rejected']} file(s) rejected whole; "
            f"see {cfg.rejected} and ops.loads"
        )
    return result.exit_code if cfg.available_now else 0


def _log(message: str) -> None:
    logger.info("%s", message)


__all__ = ["CSV_GLOB", "StreamConfig", "config_from_args", "main", "run_stream"]
