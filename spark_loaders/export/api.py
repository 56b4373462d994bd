"""``export_gold``: read the gold models and publish each as a Parquet dataset.

The run has two phases. First every selected model is read, written to its temporary
sibling directory, checked with pyarrow against the contract and the source row count, and
given its manifest; nothing visible changes yet, so a failure or a kill here leaves every
published dataset as it was. Then each model is swapped into place atomically
(:func:`spark_loaders.export.swap.swap_in`) and the previous version deleted.
"""

from __future__ import annotations

import logging
import shutil
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pyspark.sql import SparkSession

from spark_loaders import connection
from spark_loaders.domain import DEFAULT_TARGET, POSTGRES_TARGET, SPARK_TARGET, TARGETS
from spark_loaders.errors import CondoError
from spark_loaders.export import manifest as mf
from spark_loaders.export import read_gold, schema, swap, write_dataset
from spark_loaders.export.models import GOLD_SCHEMA, GoldModel, select_models
from spark_loaders.fault_injection import kill_point
from spark_loaders.paths import lake_dir
from spark_loaders.spark_session import require_jdbc

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ExportResult:
    model: str
    path: Path
    rows: int
    files: int
    bytes: int
    read_partitions: int
    seconds: float
    source: str
    manifest_id: str = ""
    dbt_invocation_id: str | None = None
    read_started_at: datetime | None = None


@dataclass
class _Staged:
    model: GoldModel
    temp: Path
    written: write_dataset.WrittenDataset
    read_partitions: int
    seconds: float
    source: str


def default_out() -> Path:
    return lake_dir() / "gold"


def new_run_id() -> str:
    return f"{datetime.now(UTC):%Y%m%dT%H%M%SZ}-{uuid.uuid4().hex[:8]}"


@dataclass(frozen=True)
class ExportOptions:
    """Where gold is read from and how the datasets are written.

    ``target`` says where gold lives: ``postgres`` (read over JDBC from
    :func:`spark_loaders.connection.resolve`) or ``spark`` (tables ``<gold_schema>.<model>``
    in the session's catalog). ``dbt_invocation_id`` overrides the id read from
    ``target/run_results.json``. ``max_read_partitions`` defaults to twice the session's
    parallelism (at least 2).
    """

    target: str = DEFAULT_TARGET
    gold_schema: str = GOLD_SCHEMA
    dbt_invocation_id: str | None = None
    rows_per_file: int = write_dataset.ROWS_PER_FILE
    rows_per_read_partition: int = read_gold.ROWS_PER_READ_PARTITION
    max_read_partitions: int | None = None
    compression: str = write_dataset.COMPRESSION

    def __post_init__(self) -> None:
        if self.target not in TARGETS:
            raise CondoError(f"unknown target {self.target!r}; choose one of {', '.join(TARGETS)}")
        if self.compression not in ("zstd", "snappy"):
            raise CondoError(f"compression must be zstd or snappy, not {self.compression!r}")


def export_gold(
    spark: SparkSession,
    *,
    out: Path | None = None,
    models: Sequence[str] | None = None,
    options: ExportOptions | None = None,
) -> list[ExportResult]:
    """Export the gold ``models`` (default: all) to ``<out>/<model>/``.

    Uses ``spark`` as given and never stops it; ``options`` default to
    :class:`ExportOptions`'s defaults (read from PostgreSQL).
    """
    opts = options or ExportOptions()
    selected = select_models(list(models) if models else None)
    out = (out or default_out()).expanduser().resolve()
    run_id = new_run_id()
    read_started_at = datetime.now(UTC)

    with swap.export_lock(out):
        for action in swap.recover(out):
            log.warning("export: %s in %s", action, out)
        for model in selected:
            swap.check_replaceable(out / model.name)
        staged = _stage_all(spark, selected, out, run_id, opts)
        results = _swap_all(staged, out, run_id, read_started_at)
        if opts.target == POSTGRES_TARGET:
            _record_history(results)
        return results


def _stage_all(
    spark: SparkSession,
    selected: Sequence[GoldModel],
    out: Path,
    run_id: str,
    opts: ExportOptions,
) -> list[_Staged]:
    """Phase one: every model written, checked and given its manifest in its temporary
    directory. On any failure the temporary directories are removed and the error raised;
    nothing published has changed."""
    staged: list[_Staged] = []
    try:
        if opts.target == POSTGRES_TARGET:
            require_jdbc(spark)
            info = connection.resolve("transformer")
            tables = [model.name for model in selected]
            max_parts = opts.max_read_partitions or max(
                2, spark.sparkContext.defaultParallelism * 2
            )
            with read_gold.PgSnapshot(info, opts.gold_schema, tables) as snap:
                for model in selected:
                    staged.append(_stage_postgres(spark, model, snap, out, run_id, max_parts, opts))
        else:
            for model in selected:
                staged.append(_stage_spark(spark, model, out, run_id, opts))
        kill_point("export.after_write")  # test-only, see fault_injection
    except BaseException:
        for item in staged:
            shutil.rmtree(item.temp, ignore_errors=True)
        for model in selected:
            shutil.rmtree(swap.temp_path(out, model.name, run_id), ignore_errors=True)
        raise
    return staged


def _swap_all(
    staged: list[_Staged], out: Path, run_id: str, read_started_at: datetime
) -> list[ExportResult]:
    """Phase two: swap each staged dataset into place and delete the version it replaces."""
    results = []
    try:
        for item in staged:
            target_dir = out / item.model.name
            previous = swap.swap_in(item.temp, target_dir, run_id)
            if previous is not None:
                shutil.rmtree(previous, ignore_errors=True)
            results.append(
                ExportResult(
                    model=item.model.name,
                    path=target_dir,
                    rows=item.written.rows,
                    files=len(item.written.files),
                    bytes=item.written.bytes,
                    read_partitions=item.read_partitions,
                    seconds=item.seconds,
                    source=item.source,
                    manifest_id=run_id,
                    read_started_at=read_started_at,
                    dbt_invocation_id=(mf.read_manifest(target_dir).get("dbt") or {}).get(
                        "invocation_id"
                    ),
                )
            )
    finally:
        for item in staged:  # versions not swapped in because an earlier swap failed
            shutil.rmtree(item.temp, ignore_errors=True)
    return results


def _record_history(results: list[ExportResult]) -> None:
    """Store what was published in ``ops.exports``; the data is already published, so a
    failure here is logged and left to the monitor's export freshness check."""
    import psycopg

    from spark_loaders import ops_history

    try:
        with psycopg.connect(**connection.resolve("transformer").psycopg_kwargs()) as conn:
            ops_history.record_exports(
                conn,
                [
                    {
                        "manifest_id": r.manifest_id,
                        "model": r.model,
                        "rows": r.rows,
                        "files": r.files,
                        "bytes": r.bytes,
                        "output_path": str(r.path),
                        "dbt_invocation_id": r.dbt_invocation_id,
                        "read_started_at": r.read_started_at,
                    }
                    for r in results
                ],
            )
    except (psycopg.Error, OSError) as exc:
        log.warning("export: not recorded in ops.exports: %s", exc)


def _dbt_section(model: GoldModel, override: str | None) -> dict[str, Any] | None:
    if override:
        return {"invocation_id": override, "source": "caller"}
    run = mf.last_dbt_run(model.name)
    if run is None:
        return None
    return {
        "invocation_id": run.invocation_id,
        "generated_at": run.generated_at,
        "status": run.status,
        "target": run.target,
        "source": "target/run_results.json",
    }


def _finish(
    spark: SparkSession,
    df: Any,
    model: GoldModel,
    temp: Path,
    *,
    expected_rows: int | None,
    files: int,
    source: dict[str, Any],
    opts: ExportOptions,
) -> write_dataset.WrittenDataset:
    """Write ``df`` to ``temp``, check it and write its manifest."""
    rows_per_file, compression = opts.rows_per_file, opts.compression
    shaped = schema.with_lake_partition(schema.conform(df, model), model)
    write_dataset.spark_write(
        write_dataset.arrange(shaped, model, files, df.rdd.getNumPartitions()),
        model,
        temp,
        rows_per_file=rows_per_file,
        compression=compression,
    )
    write_dataset.tidy(temp)
    write_dataset.ensure_schema_file(temp, model, compression=compression)
    written = write_dataset.inspect(temp, model)
    if expected_rows is not None and written.rows != expected_rows:
        raise CondoError(
            f"{source['relation']} had {expected_rows} rows but {written.rows} were written; "
            "was it rebuilt during the export? Run the export again"
        )
    manifest = {
        "format": mf.MANIFEST_FORMAT,
        "model": model.name,
        "export_id": temp.name.split(".tmp-", 1)[-1],  # ops.exports.manifest_id
        "exported_at": mf.utc_now(),
        "source": source,
        "dbt": _dbt_section(model, opts.dbt_invocation_id),
        **write_dataset.describe(model, written, compression=compression),
        "writer": {"tool": "condo export", "spark_version": spark.version},
    }
    mf.write_manifest(temp, manifest)
    return written


def _stage_postgres(
    spark: SparkSession,
    model: GoldModel,
    snap: read_gold.PgSnapshot,
    out: Path,
    run_id: str,
    max_parts: int,
    opts: ExportOptions,
) -> _Staged:
    started = time.perf_counter()
    relation = snap.relation(model)
    if not snap.exists(model):
        raise CondoError(
            f"{relation} does not exist in {snap.info.url(hide_password=True)}; build the gold "
            "models first (`condo dbt build` or `condo pipeline`)"
        )
    stats = snap.stats(model)
    plan = read_gold.plan_read(
        stats,
        model.split_column,
        max_partitions=max_parts,
        rows_per_partition=opts.rows_per_read_partition,
    )
    df = read_gold.read_postgres(spark, model, snap, plan)
    schema.check_contract(model, df.schema, relation)
    temp = swap.temp_path(out, model.name, run_id)
    source = {
        "target": POSTGRES_TARGET,
        "relation": relation,
        "database": snap.info.url(hide_password=True),
        "consistent_snapshot": snap.snapshot_id is not None,
        "read_partitions": plan.partitions,
        "split_column": plan.column,
    }
    written = _finish(
        spark,
        df,
        model,
        temp,
        expected_rows=stats.rows,
        files=write_dataset.file_count(stats.rows, opts.rows_per_file, plan.partitions),
        source=source,
        opts=opts,
    )
    return _Staged(
        model=model,
        temp=temp,
        written=written,
        read_partitions=plan.partitions,
        seconds=time.perf_counter() - started,
        source=relation,
    )


def _stage_spark(
    spark: SparkSession,
    model: GoldModel,
    out: Path,
    run_id: str,
    opts: ExportOptions,
) -> _Staged:
    started = time.perf_counter()
    relation = read_gold.spark_table_name(model, opts.gold_schema)
    df = read_gold.read_spark(spark, model, opts.gold_schema)
    schema.check_contract(model, df.schema, relation)
    rows = df.count()
    temp = swap.temp_path(out, model.name, run_id)
    source = {
        "target": SPARK_TARGET,
        "relation": relation,
        "catalog": spark.conf.get("spark.sql.catalogImplementation", "in-memory"),
    }
    written = _finish(
        spark,
        df,
        model,
        temp,
        expected_rows=rows,
        files=write_dataset.file_count(rows, opts.rows_per_file),
        source=source,
        opts=opts,
    )
    return _Staged(
        model=model,
        temp=temp,
        written=written,
        read_partitions=df.rdd.getNumPartitions(),
        seconds=time.perf_counter() - started,
        source=relation,
    )
