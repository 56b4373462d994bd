"""The loader's public API, shared by ``condo load``, ``spark-submit load_files.py`` and the
streaming job's ``foreachBatch``."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from pyspark.sql import SparkSession

from spark_loaders.domain import DEFAULT_TARGET, POSTGRES_TARGET, TARGETS
from spark_loaders.errors import CondoError
from spark_loaders.ingest.discover import discover
from spark_loaders.ingest.file_load import RunContext
from spark_loaders.ingest.report import FileResult, IngestReport, Progress

__all__ = ["FileResult", "IngestReport", "StreamContext", "ingest_files"]

MODES = ("batch", "stream")


@dataclass(frozen=True)
class StreamContext:
    query_id: str  # streaming query id from the checkpoint metadata
    batch_id: int


def ingest_files(
    spark: SparkSession,
    paths: Sequence[str | Path],
    *,
    target: str = DEFAULT_TARGET,
    force: bool = False,
    mode: str = "batch",
    stream: StreamContext | None = None,
    progress: bool = True,
) -> IngestReport:
    """Load files (or the matching files of directories) into bronze, one atomic load per
    file, entities in dependency order. Uses the given SparkSession and never stops it.

    A file whose bytes were already loaded is skipped unless ``force``; a file that cannot be
    loaded is reported (status ``rejected`` or ``failed``) and the run continues. Raises
    :class:`CondoError` for bad arguments and paths, and lets database connection errors
    propagate when they prevent recording the outcome.
    """
    if target not in TARGETS:
        raise CondoError(f"unknown target {target!r}: use one of {', '.join(TARGETS)}")
    if mode not in MODES:
        raise CondoError(f"unknown mode {mode!r}: use one of {', '.join(MODES)}")
    if mode == "stream" and stream is None:
        raise CondoError("mode='stream' needs a StreamContext")
    started = time.monotonic()
    files = discover(paths)
    run = RunContext(
        mode=mode,
        stream_query_id=stream.query_id if stream else None,
        stream_batch_id=stream.batch_id if stream else None,
    )
    report = IngestReport()
    shown = Progress(progress, len(files))
    if target == POSTGRES_TARGET:
        loader = _postgres_loader(spark, force=force, run=run, on_wait=shown.note)
    else:
        loader = _spark_loader(spark, force=force, run=run)
    for index, source in enumerate(files, start=1):
        shown.start(index, source.entity, source.path, _size(source))
        result = loader(source)
        report.files.append(result)
        shown.finish(index, result, time.monotonic() - started)
    report.seconds = time.monotonic() - started
    return report


def _postgres_loader(
    spark: SparkSession, *, force: bool, run: RunContext, on_wait: Callable[[str], None]
):
    import psycopg

    from spark_loaders import connection
    from spark_loaders.ingest.ddl import ensure_schema
    from spark_loaders.ingest.file_load import load_file

    conninfo = connection.resolve("loader").psycopg_kwargs()
    try:
        with psycopg.connect(**conninfo, autocommit=True) as conn:
            ensure_schema(conn, on_wait=on_wait)
    except psycopg.OperationalError as exc:
        raise CondoError(f"cannot connect to PostgreSQL: {str(exc).strip()}") from exc

    def load(source):
        return load_file(spark, conninfo, source, force=force, run=run)

    return load


def _spark_loader(spark: SparkSession, *, force: bool, run: RunContext):
    from spark_loaders.ingest.sink_spark import SparkTargetLoader

    loader = SparkTargetLoader(spark, force=force, run=run)
    return loader.load


def _size(source) -> int:
    """The size to show; a symbolic link's own (it is never followed), 0 if unreadable."""
    try:
        return source.path.lstat().st_size if source.symlink else source.path.stat().st_size
    except OSError:
        return 0
