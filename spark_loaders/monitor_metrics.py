"""Prometheus metrics of a monitor snapshot: a thin layer over ``spark_loaders.monitor``.

:func:`families` turns one snapshot and its checks into metric families; ``condo monitor
serve`` exposes them on ``/metrics`` (a fresh snapshot per scrape, through
:class:`SnapshotCollector`), and ``condo monitor --format prometheus [--output FILE]`` prints
or atomically writes the same text for node_exporter's textfile collector.

Every name starts with ``condo_``. Labels only carry bounded values: an entity, a gold
model, a check name (both fixed by the project), a status, a stage or a disk location.
The metric list is documented in docs/monitoring.md.
"""

from __future__ import annotations

import os
import statistics
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from spark_loaders.domain import ENTITY_ORDER
from spark_loaders.monitor import (
    GOLD_MODELS,
    LEVELS,
    Check,
    Snapshot,
    Thresholds,
    overall,
    stream_alive,
)


def _gauge(name: str, doc: str, labels: list[str] | None = None) -> GaugeMetricFamily:
    return GaugeMetricFamily(name, doc, labels=labels or [])


def families(snapshot: Snapshot, checks: list[Check], limits: Thresholds) -> list[Metric]:
    out = _check_families(checks)
    out += _entity_families(snapshot)
    stage = _stage_family(snapshot)
    if snapshot.dbt is not None:
        out += _dbt_families(snapshot)
    out.append(stage)
    out += _volume_families(snapshot, limits)
    out += _orphan_and_disk_families(snapshot)
    out += _compaction_families(snapshot, limits)
    out += _stream_families(snapshot, checks, limits)
    return out


def _check_families(checks: list[Check]) -> list[Metric]:
    status = _gauge("condo_status", "Overall monitor level: 0 ok, 1 warn, 2 error.")
    status.add_metric([], LEVELS[overall(checks)])
    per_check = _gauge(
        "condo_check_status", "Level of each health check: 0 ok, 1 warn, 2 error.", ["check"]
    )
    for check in checks:
        per_check.add_metric([check.name], LEVELS[check.level])
    by_level = _gauge("condo_checks", "Number of health checks at each level.", ["level"])
    for level in LEVELS:
        by_level.add_metric([level], sum(1 for c in checks if c.level == level))
    return [status, per_check, by_level]


def _entity_families(snapshot: Snapshot) -> list[Metric]:
    """Rows, files and the last load of each entity."""
    rows = _gauge(
        "condo_rows",
        "Rows read, loaded and rejected by the loads of the monitor's window (--since-hours).",
        ["entity", "outcome"],
    )
    files = _gauge(
        "condo_files", "Files by ledger status in the monitor's window.", ["entity", "status"]
    )
    loaded_total = CounterMetricFamily(
        "condo_rows_loaded", "Rows loaded into bronze since the ledger began.", labels=["entity"]
    )
    rejected_total = CounterMetricFamily(
        "condo_rows_rejected", "Rows quarantined since the ledger began.", labels=["entity"]
    )
    last_load = _gauge(
        "condo_last_load_timestamp_seconds",
        "Unix time of the entity's last successful load.",
        ["entity"],
    )
    load_age = _gauge(
        "condo_last_load_age_seconds",
        "Seconds since the entity's last successful load.",
        ["entity"],
    )
    for entity in ENTITY_ORDER:
        s = snapshot.entities.get(entity)
        if s is None:
            continue
        for outcome, value in (
            ("read", s.rows_read),
            ("loaded", s.rows_loaded),
            ("rejected", s.rows_rejected),
        ):
            rows.add_metric([entity, outcome], value)
        for st, value in (
            ("loaded", s.files_loaded),
            ("skipped", s.files_skipped),
            ("rejected", s.files_rejected),
            ("failed", s.files_failed),
        ):
            files.add_metric([entity, st], value)
        loaded_total.add_metric([entity], s.rows_loaded_total)
        rejected_total.add_metric([entity], s.rows_rejected_total)
        if s.last_loaded_at is not None:
            last_load.add_metric([entity], s.last_loaded_at.timestamp())
            load_age.add_metric([entity], (snapshot.taken_at - s.last_loaded_at).total_seconds())
    return [rows, files, loaded_total, rejected_total, last_load, load_age]


def _stage_family(snapshot: Snapshot) -> Metric:
    stage = _gauge(
        "condo_last_success_timestamp_seconds",
        "Unix time each stage last succeeded (load, dbt_build, export).",
        ["stage"],
    )
    loads = [s.last_loaded_at for s in snapshot.entities.values() if s.last_loaded_at]
    if loads:
        stage.add_metric(["load"], max(loads).timestamp())
    state = snapshot.dbt
    if state is not None and state.last_good_build_at is not None:
        stage.add_metric(["dbt_build"], state.last_good_build_at.timestamp())
    if state is not None and state.exported_at:
        stage.add_metric(["export"], max(state.exported_at.values()).timestamp())
    return stage


def _dbt_families(snapshot: Snapshot) -> list[Metric]:
    from spark_loaders.monitor import export_lag_seconds

    state = snapshot.dbt
    assert state is not None
    nodes = _gauge(
        "condo_dbt_nodes",
        "Nodes of the latest dbt build by resource type and status.",
        ["resource_type", "status"],
    )
    build_time = _gauge("condo_dbt_build_timestamp_seconds", "Unix time the latest build ended.")
    duration = _gauge("condo_dbt_build_duration_seconds", "Duration of the latest dbt build.")
    if state.build is not None:
        for (kind, st), count in sorted(state.build.counts.items()):
            nodes.add_metric([kind, st], count)
        build_time.add_metric([], state.build.finished_at.timestamp())
        if state.build.seconds is not None:
            duration.add_metric([], state.build.seconds)
    gold_ts = _gauge(
        "condo_gold_build_timestamp_seconds",
        "Unix time of the gold model's last successful build.",
        ["model"],
    )
    gold_age = _gauge(
        "condo_gold_age_seconds", "Seconds since the gold model's last successful build.", ["model"]
    )
    export_ts = _gauge(
        "condo_export_timestamp_seconds", "Unix time of the model's last export.", ["model"]
    )
    export_lag = _gauge(
        "condo_export_lag_seconds",
        "Seconds the export has been older than the gold build it should reflect (0: current).",
        ["model"],
    )
    for model in GOLD_MODELS:
        built, exported = state.gold_built_at.get(model), state.exported_at.get(model)
        if built is not None:
            gold_ts.add_metric([model], built.timestamp())
            gold_age.add_metric([model], (snapshot.taken_at - built).total_seconds())
        if exported is not None:
            export_ts.add_metric([model], exported.timestamp())
        lag = export_lag_seconds(built, exported, snapshot.taken_at)
        if lag is not None:
            export_lag.add_metric([model], lag)
    return [nodes, build_time, duration, gold_ts, gold_age, export_ts, export_lag]


def _volume_families(snapshot: Snapshot, limits: Thresholds) -> list[Metric]:
    latest = _gauge(
        "condo_load_rows_latest", "Rows loaded by the entity's latest batch load.", ["entity"]
    )
    median = _gauge(
        "condo_load_rows_median",
        "Median rows loaded by the entity's previous batch loads (with enough history).",
        ["entity"],
    )
    for entity, loads in sorted(snapshot.volumes.items()):
        if not loads:
            continue
        latest.add_metric([entity], loads[0])
        previous = loads[1 : 1 + limits.volume_history]
        if len(previous) >= limits.volume_min_history:
            median.add_metric([entity], statistics.median(previous))
    return [latest, median]


def _orphan_and_disk_families(snapshot: Snapshot) -> list[Metric]:
    rows = _gauge(
        "condo_orphan_rows", "Rows silver excluded for a broken reference (last build).", ["entity"]
    )
    ratio = _gauge(
        "condo_orphan_ratio", "Excluded rows as a share of deduplicated bronze.", ["entity"]
    )
    for entity, stats in sorted(snapshot.orphans.items()):
        total = stats.excluded + stats.kept
        rows.add_metric([entity], stats.excluded)
        ratio.add_metric([entity], stats.excluded / total if total else 0.0)
    free = _gauge(
        "condo_disk_free_ratio", "Free share of the filesystem holding a location.", ["location"]
    )
    free_bytes = _gauge(
        "condo_disk_free_bytes", "Free bytes of the filesystem holding a location.", ["location"]
    )
    for disk in snapshot.disks:
        free.add_metric(
            [disk.location], disk.free_bytes / disk.total_bytes if disk.total_bytes else 0
        )
        free_bytes.add_metric([disk.location], disk.free_bytes)
    return [rows, ratio, free, free_bytes]


def _compaction_families(snapshot: Snapshot, limits: Thresholds) -> list[Metric]:
    partitions = _gauge(
        "condo_bronze_load_partitions",
        "Load partitions (one per bulk load, or merged by `condo bronze compact`) of a bronze "
        "table.",
        ["entity"],
    )
    for entity, count in sorted(snapshot.bronze_partitions.items()):
        partitions.add_metric([entity], count)
    limit = _gauge(
        "condo_bronze_load_partitions_warn",
        "The monitor's threshold: load partitions per bronze table at which it warns.",
    )
    limit.add_metric([], limits.bronze_partitions_warn)
    failed = _gauge(
        "condo_compaction_last_failed",
        "1 when the latest compaction of the bronze table failed (nothing was changed), else 0 "
        "(also when it was never compacted).",
        ["entity"],
    )
    finished = _gauge(
        "condo_compaction_last_timestamp_seconds",
        "Unix time the latest compaction of the bronze table finished.",
        ["entity"],
    )
    for entity in sorted(set(snapshot.bronze_partitions) | set(snapshot.compactions)):
        last = snapshot.compactions.get(entity)
        failed.add_metric([entity], 1 if last is not None and last.status == "failed" else 0)
        if last is not None:
            finished.add_metric([entity], last.finished_at.timestamp())
    return [partitions, limit, failed, finished]


def _stream_families(snapshot: Snapshot, checks: list[Check], limits: Thresholds) -> list[Metric]:
    up = _gauge(
        "condo_stream_up",
        "1 when the stream reports itself running and fresh, 0 when not (only with "
        "--expect-stream).",
    )
    latency = _gauge(
        "condo_stream_latency_seconds",
        "Seconds from a file's arrival to its commit, for the last micro-batch.",
    )
    age = _gauge(
        "condo_stream_status_age_seconds", "Seconds since the stream's last status update."
    )
    batches = CounterMetricFamily(
        "condo_stream_batches", "Micro-batches of the current stream run."
    )
    status = snapshot.stream
    expected = any(c.name == "stream.up" for c in checks)
    if expected:  # a stream that stopped after --available-now is not "down"
        up.add_metric(
            [], 1 if stream_alive(status, snapshot.taken_at, limits.stream_stale_minutes) else 0
        )
    if status is not None:
        last = status.get("last_batch") or {}
        if last.get("latency_ms") is not None:
            latency.add_metric([], float(last["latency_ms"]) / 1000)
        from spark_loaders.monitor import _parse_time

        updated = _parse_time(status.get("updated_at"))
        if updated is not None:
            age.add_metric([], (snapshot.taken_at - updated).total_seconds())
        batches.add_metric([], (status.get("totals") or {}).get("batches", 0))
    return [up, latency, age, batches]


class SnapshotCollector(Collector):
    """Takes a fresh snapshot on every scrape. If that fails (the database is down, say),
    the scrape still answers, with ``condo_monitor_up 0`` and the reason on stderr."""

    def __init__(
        self,
        take: Callable[[], tuple[Snapshot, list[Check]]],
        limits: Thresholds,
        on_error: Callable[[str], None] | None = None,
    ) -> None:
        self.take = take
        self.limits = limits
        self.on_error = on_error

    def collect(self) -> Iterator[Metric]:
        started = time.perf_counter()
        up = _gauge("condo_monitor_up", "1 when the monitor could read its sources, else 0.")
        try:
            snapshot, checks = self.take()
        except Exception as exc:
            if self.on_error is not None:
                self.on_error((str(exc).strip().splitlines() or [type(exc).__name__])[0])
            up.add_metric([], 0)
            yield up
            return
        yield from families(snapshot, checks, self.limits)
        up.add_metric([], 1)
        yield up
        took = _gauge("condo_monitor_duration_seconds", "Seconds the snapshot took to gather.")
        took.add_metric([], time.perf_counter() - started)
        yield took

    def describe(self) -> list[Metric]:
        return []  # families are only known once a snapshot is taken


class _Fixed(Collector):
    def __init__(self, metrics: list[Metric]) -> None:
        self.metrics = metrics

    def collect(self) -> Iterator[Metric]:
        yield from self.metrics


def exposition(snapshot: Snapshot, checks: list[Check], limits: Thresholds) -> str:
    """The Prometheus text format of one snapshot."""
    registry = CollectorRegistry(auto_describe=False)
    up = _gauge("condo_monitor_up", "1 when the monitor could read its sources, else 0.")
    up.add_metric([], 1)
    registry.register(_Fixed([*families(snapshot, checks, limits), up]))
    return generate_latest(registry).decode("utf-8")


def write_atomically(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` through a temporary file in the same directory and a
    rename, so a reader (node_exporter's textfile collector) never sees half a file."""
    path = path.expanduser().resolve()
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
