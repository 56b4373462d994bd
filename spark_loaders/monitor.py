"""Health checks over what the pipeline records: the load ledger, the quarantine counts,
bronze freshness, the streaming status file, the dbt and export history
(``spark_loaders.ops_history``), the orphan counts dbt stored, and free disk space.

``gather`` reads a :class:`Snapshot` from PostgreSQL (and the stream's status file);
``evaluate`` is a pure function from a snapshot and thresholds to checks, each ``ok``,
``warn`` or ``error``. ``condo monitor`` prints them as a table, JSON or Prometheus text
and exits 0 / 1 / 2 (ok / warn / error), so cron, CI or any alerting tool can act on it.
"""

from __future__ import annotations

import json
import shutil
import statistics
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from spark_loaders.domain import ENTITIES, ENTITY_ORDER
from spark_loaders.export.models import MODEL_NAMES as GOLD_MODELS

LEVELS = {"ok": 0, "warn": 1, "error": 2}


@dataclass(frozen=True)
class Thresholds:
    since_hours: float = 24.0
    freshness_warn_hours: float = 24.0
    freshness_error_hours: float = 72.0  # the same default as dbt's bronze_freshness_error_hours
    reject_rate_warn: float = 0.01
    reject_rate_error: float = 0.05
    stream_stale_minutes: float = 10.0
    gold_warn_hours: float = 24.0
    gold_error_hours: float = 72.0
    export_lag_warn_hours: float = 1.0
    export_lag_error_hours: float = 24.0
    volume_drop_ratio: float = 0.5
    volume_history: int = 7
    volume_min_history: int = 3
    orphan_rate_warn: float = 0.05
    orphan_rate_error: float = 0.20
    disk_free_warn: float = 0.10
    disk_free_error: float = 0.05
    expect_stream: bool = False
    bronze_partitions_warn: int = 100  # load partitions per bronze table: time to compact


@dataclass(frozen=True)
class EntityStats:
    entity: str
    files_loaded: int = 0
    files_skipped: int = 0
    files_rejected: int = 0
    files_failed: int = 0
    rows_read: int = 0
    rows_loaded: int = 0
    rows_rejected: int = 0
    rejects_by_reason: dict[str, int] = field(default_factory=dict)
    last_loaded_at: datetime | None = None
    last_error: str | None = None
    # since the ledger began (loads later replaced included): counters for Prometheus
    rows_loaded_total: int = 0
    rows_rejected_total: int = 0


@dataclass(frozen=True)
class DbtBuild:
    """The latest dbt results (``gather_dbt``): the last full build and any node run since."""

    invocation_id: str
    finished_at: datetime
    status: str
    # (resource_type, status) -> count, e.g. ("test", "warn") -> 2
    counts: dict[tuple[str, str], int] = field(default_factory=dict)
    # (resource_type, status) -> node names, for the statuses that need attention
    names: dict[tuple[str, str], list[str]] = field(default_factory=dict)
    seconds: float | None = None


@dataclass(frozen=True)
class DbtState:
    """What the dbt and export history says; ``build`` is None when no build was recorded."""

    build: DbtBuild | None = None
    gold_built_at: dict[str, datetime] = field(default_factory=dict)  # model -> last success
    # model -> when the last export began reading gold (it reflects no build finished later)
    exported_at: dict[str, datetime] = field(default_factory=dict)
    last_good_build_at: datetime | None = None  # latest build that did not fail


@dataclass(frozen=True)
class OrphanStats:
    entity: str
    excluded: int  # rows silver excluded (audit.orfaos_sao_reportados, the last build)
    kept: int  # rows in silver


@dataclass(frozen=True)
class DiskStats:
    location: str  # a fixed label: lake, landing, state, database
    path: str
    free_bytes: int
    total_bytes: int


@dataclass(frozen=True)
class Compaction:
    """The latest row of ``ops.compactions`` for one bronze table."""

    status: str  # compacted, failed
    finished_at: datetime
    error: str | None = None


@dataclass(frozen=True)
class Snapshot:
    taken_at: datetime
    entities: dict[str, EntityStats]
    stream: dict[str, Any] | None = None
    # None: not gathered (the checks that read them are then left out)
    dbt: DbtState | None = None
    volumes: dict[str, list[int]] = field(default_factory=dict)  # rows per load, latest first
    orphans: dict[str, OrphanStats] = field(default_factory=dict)
    disks: list[DiskStats] = field(default_factory=list)
    # ops.stream_retries rows (path, reason, error, attempts); None when the table is absent
    stream_retries: tuple[tuple[str, str, str | None, int], ...] | None = None
    # entity -> load partitions of its bronze table (tables that exist only)
    bronze_partitions: dict[str, int] = field(default_factory=dict)
    compactions: dict[str, Compaction] = field(default_factory=dict)  # entity -> latest


@dataclass(frozen=True)
class Check:
    name: str
    level: str
    message: str
    value: float | None = None


def _rate(stats: EntityStats) -> float:
    return stats.rows_rejected / stats.rows_read if stats.rows_read else 0.0


def evaluate(snapshot: Snapshot, limits: Thresholds) -> list[Check]:
    checks: list[Check] = []
    for entity in ENTITY_ORDER:
        stats = snapshot.entities.get(entity, EntityStats(entity))
        checks += _entity_checks(entity, stats, snapshot.taken_at, limits)
    if snapshot.stream is not None:
        checks.append(_stream_check(snapshot, limits))
        dead = stream_process_check(snapshot.stream)
        if dead is not None:
            checks.append(dead)
    if snapshot.stream_retries is not None:
        checks.append(stream_retries_check(snapshot.stream_retries))
    if limits.expect_stream:
        checks.append(stream_down_check(snapshot, limits))
    if snapshot.dbt is not None:
        checks.append(dbt_build_check(snapshot.dbt.build))
        checks += gold_freshness_checks(snapshot, limits)
        checks += export_freshness_checks(snapshot, limits)
    checks += volume_checks(snapshot, limits)
    checks += orphan_checks(snapshot, limits)
    checks += disk_checks(snapshot, limits)
    checks += compaction_checks(snapshot, limits)
    return checks


def _entity_checks(
    entity: str, stats: EntityStats, now: datetime, limits: Thresholds
) -> list[Check]:
    """Failures, reject rate and freshness of one entity's loads."""
    failed = stats.files_failed + stats.files_rejected
    rate = _rate(stats)
    reasons = ", ".join(f"{k} {v}" for k, v in sorted(stats.rejects_by_reason.items()))
    checks = [
        Check(
            f"failures.{entity}",
            "error" if failed else "ok",
            f"{stats.files_failed} failed and {stats.files_rejected} wholly rejected files"
            + (f"; last error: {stats.last_error}" if stats.last_error else ""),
            float(failed),
        ),
        Check(
            f"reject_rate.{entity}",
            _level(rate, limits.reject_rate_warn, limits.reject_rate_error),
            f"{stats.rows_rejected} of {stats.rows_read} rows rejected ({rate:.2%})"
            + (f": {reasons}" if reasons else ""),
            rate,
        ),
    ]
    if stats.last_loaded_at is None:
        checks.append(Check(f"freshness.{entity}", "error", "never loaded", None))
    else:
        age_h = (now - stats.last_loaded_at).total_seconds() / 3600
        level = _level(age_h, limits.freshness_warn_hours, limits.freshness_error_hours)
        checks.append(
            Check(f"freshness.{entity}", level, f"last load {age_h:.1f} h ago", age_h * 3600)
        )
    return checks


def _level(value: float, warn: float, error: float) -> str:
    """``error`` above ``error``, ``warn`` above ``warn``, else ``ok`` (the limit is fine)."""
    return "error" if value > error else "warn" if value > warn else "ok"


def _names(names: list[str], limit: int = 5) -> str:
    shown = ", ".join(sorted(names)[:limit])
    return shown + (f" and {len(names) - limit} more" if len(names) > limit else "")


def dbt_build_check(build: DbtBuild | None) -> Check:
    """Error when the latest build failed a model or an error-severity test; warn when only
    warn-severity tests flagged rows."""
    if build is None:
        return Check("dbt.build", "error", "no dbt build recorded in ops.dbt_runs", None)
    broken: list[str] = []
    for (kind, status), names in sorted(build.names.items()):
        if status in ("error", "fail", "runtime error", "skipped"):
            broken.append(f"{len(names)} {kind} {status}: {_names(names)}")
    warned = build.names.get(("test", "warn"), [])
    total = sum(build.counts.values())
    if broken or build.status == "error":
        detail = "; ".join(broken) or "dbt exited with an error before running the nodes"
        return Check("dbt.build", "error", f"latest build failed: {detail}", float(len(broken)))
    if warned:
        return Check(
            "dbt.build",
            "warn",
            f"latest build: {len(warned)} warn test(s) flagged rows: {_names(warned)}",
            float(len(warned)),
        )
    return Check("dbt.build", "ok", f"latest build passed ({total} nodes)", 0.0)


def gold_freshness_checks(snapshot: Snapshot, limits: Thresholds) -> list[Check]:
    checks = []
    built = snapshot.dbt.gold_built_at if snapshot.dbt else {}
    for model in GOLD_MODELS:
        at = built.get(model)
        if at is None:
            checks.append(Check(f"freshness.gold.{model}", "error", "never built", None))
            continue
        hours = (snapshot.taken_at - at).total_seconds() / 3600
        level = _level(hours, limits.gold_warn_hours, limits.gold_error_hours)
        checks.append(
            Check(f"freshness.gold.{model}", level, f"last built {hours:.1f} h ago", hours * 3600)
        )
    return checks


def export_lag_seconds(built_at: datetime | None, exported_at: datetime | None, now: datetime):
    """How long the export has been older than the gold build it should reflect (0 when it
    is newer; None when gold was never built)."""
    if built_at is None:
        return None
    if exported_at is not None and exported_at >= built_at:
        return 0.0
    return max(0.0, (now - built_at).total_seconds())


def export_freshness_checks(snapshot: Snapshot, limits: Thresholds) -> list[Check]:
    checks = []
    state = snapshot.dbt or DbtState()
    for model in GOLD_MODELS:
        built, exported = state.gold_built_at.get(model), state.exported_at.get(model)
        lag = export_lag_seconds(built, exported, snapshot.taken_at)
        if lag is None:
            continue  # gold was never built: freshness.gold says so
        hours = lag / 3600
        level = _level(hours, limits.export_lag_warn_hours, limits.export_lag_error_hours)
        if lag == 0:
            message = "export is newer than the last gold build"
        elif exported is None:
            message = f"never exported; gold built {hours:.1f} h ago"
        else:
            message = f"export older than the gold build of {hours:.1f} h ago"
        checks.append(Check(f"export.{model}", level, message, lag))
    return checks


def volume_checks(snapshot: Snapshot, limits: Thresholds) -> list[Check]:
    """Warn when an entity's latest batch load brought fewer rows than ``volume_drop_ratio``
    of the median of its previous ``volume_history`` loads."""
    checks = []
    for entity in ENTITY_ORDER:
        if entity not in snapshot.volumes:
            continue
        loads = snapshot.volumes[entity]
        previous = loads[1 : 1 + limits.volume_history]
        if len(previous) < limits.volume_min_history:
            checks.append(
                Check(
                    f"volume.{entity}",
                    "ok",
                    f"{len(loads)} load(s): too few to compare (needs "
                    f"{limits.volume_min_history + 1})",
                    None,
                )
            )
            continue
        median = statistics.median(previous)
        ratio = loads[0] / median if median else 1.0
        level = "warn" if ratio < limits.volume_drop_ratio else "ok"
        checks.append(
            Check(
                f"volume.{entity}",
                level,
                f"latest load {loads[0]} rows, median of the previous {len(previous)} "
                f"{median:g} ({ratio:.0%})",
                ratio,
            )
        )
    return checks


def orphan_checks(snapshot: Snapshot, limits: Thresholds) -> list[Check]:
    """Rows silver excluded for a broken reference, as a share of deduplicated bronze."""
    checks = []
    for entity, stats in sorted(snapshot.orphans.items()):
        total = stats.excluded + stats.kept
        rate = stats.excluded / total if total else 0.0
        checks.append(
            Check(
                f"orphans.{entity}",
                _level(rate, limits.orphan_rate_warn, limits.orphan_rate_error),
                f"{stats.excluded} of {total} rows excluded from silver ({rate:.2%})",
                rate,
            )
        )
    return checks


def disk_checks(snapshot: Snapshot, limits: Thresholds) -> list[Check]:
    checks = []
    for disk in snapshot.disks:
        free = disk.free_bytes / disk.total_bytes if disk.total_bytes else 0.0
        level = (
            "error"
            if free < limits.disk_free_error
            else "warn"
            if free < limits.disk_free_warn
            else "ok"
        )
        checks.append(
            Check(
                f"disk.{disk.location}",
                level,
                f"{free:.1%} free ({disk.free_bytes / 2**30:.1f} GiB) under {disk.path}",
                free,
            )
        )
    return checks


def compaction_checks(snapshot: Snapshot, limits: Thresholds) -> list[Check]:
    """Per bronze table: ``warn`` at ``bronze_partitions_warn`` load partitions or more (run
    ``condo bronze compact``), and ``warn`` when its latest compaction, within the window,
    failed (nothing was changed, but the partitions keep piling up)."""
    checks = []
    for entity in ENTITY_ORDER:
        count = snapshot.bronze_partitions.get(entity)
        if count is None:
            continue
        crowded = count >= limits.bronze_partitions_warn
        checks.append(
            Check(
                f"bronze_partitions.{entity}",
                "warn" if crowded else "ok",
                f"{count} load partitions"
                + (
                    f" (>= {limits.bronze_partitions_warn}): run `condo bronze compact`"
                    if crowded
                    else ""
                ),
                float(count),
            )
        )
        last = snapshot.compactions.get(entity)
        if last is None:
            continue
        recent = last.finished_at >= snapshot.taken_at - timedelta(hours=limits.since_hours)
        failed = last.status == "failed" and recent
        checks.append(
            Check(
                f"compaction.{entity}",
                "warn" if failed else "ok",
                f"last compaction failed: {last.error}"
                if failed
                else f"last compaction {last.status}",
                1.0 if failed else 0.0,
            )
        )
    return checks


def stream_alive(status: dict[str, Any] | None, now: datetime, stale_minutes: float) -> bool:
    """True when the status file says running/idle/starting and was updated recently."""
    if not status or status.get("state") not in ("running", "idle", "starting"):
        return False
    updated = _parse_time(status.get("updated_at"))
    return updated is not None and (now - updated).total_seconds() / 60 <= stale_minutes


def stream_down_check(snapshot: Snapshot, limits: Thresholds) -> Check:
    """With ``--expect-stream``: an error unless the stream reports itself alive."""
    status = snapshot.stream
    if status is None:
        return Check("stream.up", "error", "stream expected but it has no status file", 0.0)
    state = status.get("state")
    if state not in ("running", "idle", "starting"):
        return Check("stream.up", "error", f"stream expected but its state is {state}", 0.0)
    updated = _parse_time(status.get("updated_at"))
    age_min = (snapshot.taken_at - updated).total_seconds() / 60 if updated else None
    if age_min is None or age_min > limits.stream_stale_minutes:
        return Check(
            "stream.up",
            "error",
            f"stream expected but its status is stale ({'never' if age_min is None else f'{age_min:.0f} min'})",
            0.0,
        )
    return Check("stream.up", "ok", f"stream {state}", 1.0)


def stream_retries_check(rows: tuple[tuple[str, str, str | None, int], ...]) -> Check:
    """Files the stream has not loaded yet. A failed file (unreadable, changed during its
    load, gone) is an error until it loads; a file only waiting to settle is a warning."""
    if not rows:
        return Check("stream.retries", "ok", "no file waiting for a retry", 0.0)
    failed = [r for r in rows if r[1] != "not_settled"]
    first = failed[0] if failed else rows[0]
    name = Path(first[0]).name
    return Check(
        "stream.retries",
        "error" if failed else "warn",
        f"{len(failed)} failed and {len(rows) - len(failed)} unsettled file(s) queued for retry; "
        f"{name}: {first[1]} after {first[3]} attempt(s): {first[2] or ''}".rstrip(": "),
        float(len(rows)),
    )


def stream_process_check(status: dict[str, Any]) -> Check | None:
    """A status file that says the stream is working while its process is gone (killed,
    machine rebooted) is an error: nothing is ingesting. ``process_alive`` is filled in by
    :func:`gather` for a status written on this host."""
    if status.get("state") not in ("starting", "running", "idle"):
        return None
    if status.get("process_alive") is not False:
        return None
    return Check(
        "stream.process",
        "error",
        f"the status file says {status.get('state')} but process {status.get('pid')} on "
        f"{status.get('host')} is gone: the stream is not running",
        None,
    )


def process_alive(pid: Any) -> bool | None:
    """Whether ``pid`` runs on this machine (None when it cannot be told)."""
    import os

    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    except (TypeError, ValueError, OSError):
        return None
    return True


def connect_or_explain(info, psycopg):
    """A connection, or a one-line CondoError (exit 2) naming the server that is down."""
    from spark_loaders.errors import CondoError

    try:
        kwargs = dict(info.psycopg_kwargs())
        kwargs.setdefault("connect_timeout", 10)
        return psycopg.connect(**kwargs)
    except psycopg.OperationalError as exc:
        detail = str(exc).strip().splitlines()[-1] if str(exc).strip() else type(exc).__name__
        raise CondoError(
            f"monitor: cannot reach PostgreSQL at {info.url(hide_password=True)} "
            f"({info.source}): {detail.strip()}"
        ) from None


def gather_stream_retries(conn) -> tuple[tuple[str, str, str | None, int], ...] | None:
    """The stream's retry queue (``ops.stream_retries``), or None if no stream created it."""
    if not conn.execute("select to_regclass('ops.stream_retries') is not null").fetchone()[0]:
        return None
    rows = conn.execute(
        "select path, reason, error, attempts from ops.stream_retries order by first_failed_at"
    ).fetchall()
    return tuple((str(p), str(r), e, int(a)) for p, r, e, a in rows)


def _stream_check(snapshot: Snapshot, limits: Thresholds) -> Check:
    status = snapshot.stream or {}
    state = status.get("state")
    if status.get("error") or state == "failed":
        return Check("stream", "error", f"stream failed: {status.get('error')}", None)
    updated = _parse_time(status.get("updated_at"))
    if state in ("running", "idle", "starting") and updated is not None:
        age_min = (snapshot.taken_at - updated).total_seconds() / 60
        if age_min > limits.stream_stale_minutes:
            return Check(
                "stream", "warn", f"state {state} but no update for {age_min:.0f} min", age_min * 60
            )
    totals = status.get("totals", {})
    return Check(
        "stream",
        "ok",
        f"state {state}, {totals.get('batches', 0)} batches, {totals.get('rows_loaded', 0)} rows loaded",
        None,
    )


def _parse_time(value: Any) -> datetime | None:
    if not value:
        return None
    try:
        parsed = datetime.fromisoformat(str(value))
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def overall(checks: list[Check]) -> str:
    return max((c.level for c in checks), key=LEVELS.__getitem__, default="ok")


GATHER_SQL = """
select entity,
       count(*) filter (where status = 'loaded' and finished_at >= %(since)s),
       count(*) filter (where status = 'skipped' and finished_at >= %(since)s),
       count(*) filter (where status = 'rejected' and finished_at >= %(since)s),
       count(*) filter (where status = 'failed' and finished_at >= %(since)s),
       coalesce(sum(rows_read) filter (where status = 'loaded' and finished_at >= %(since)s), 0),
       coalesce(sum(rows_loaded) filter (where status = 'loaded' and finished_at >= %(since)s), 0),
       coalesce(sum(rows_rejected) filter (where status = 'loaded' and finished_at >= %(since)s), 0),
       max(finished_at) filter (where status = 'loaded'),
       (array_agg(error order by finished_at desc)
           filter (where status in ('failed', 'rejected') and finished_at >= %(since)s))[1],
       coalesce(sum(rows_loaded) filter (where status in ('loaded', 'replaced')), 0),
       coalesce(sum(rows_rejected) filter (where status <> 'skipped'), 0)
from ops.loads
group by entity
"""

REASONS_SQL = """
select entity, reason.key, sum(reason.value::bigint)
from ops.loads, jsonb_each_text(rejects_by_reason) as reason
where status = 'loaded' and finished_at >= %(since)s
group by 1, 2
"""


def gather(
    conn,
    *,
    since_hours: float,
    stream_status: Path | None,
    volume_history: int = 7,
    disk_paths: dict[str, Path] | None = None,
) -> Snapshot:
    """Read the ledger (``ops.loads``), the stream's status file, the dbt and export history,
    the orphan counts of the last build and the free space under ``disk_paths`` (plus the
    database's data directory when the server is on this machine)."""
    now = conn.execute("select now()").fetchone()[0]
    since = now - timedelta(hours=since_hours)
    exists = conn.execute("select to_regclass('ops.loads') is not null").fetchone()[0]
    entities: dict[str, EntityStats] = {}
    if exists:
        reasons: dict[str, dict[str, int]] = {}
        for entity, reason, count in conn.execute(REASONS_SQL, {"since": since}):
            reasons.setdefault(entity, {})[reason] = int(count)
        for row in conn.execute(GATHER_SQL, {"since": since}):
            entity = row[0]
            entities[entity] = EntityStats(
                entity,
                *(int(v) for v in row[1:8]),
                reasons.get(entity, {}),
                row[8],
                row[9],
                int(row[10]),
                int(row[11]),
            )
    stream = None
    if stream_status is not None and stream_status.is_file():
        try:
            stream = json.loads(stream_status.read_text())
        except (OSError, json.JSONDecodeError) as exc:
            stream = {"state": "unknown", "error": f"unreadable status file: {exc}"}
        else:
            import socket

            if stream.get("pid") is not None and stream.get("host") == socket.gethostname():
                stream["process_alive"] = process_alive(stream["pid"])
    return Snapshot(
        now,
        entities,
        stream,
        dbt=gather_dbt(conn),
        volumes=gather_volumes(conn, volume_history) if exists else {},
        orphans=gather_orphans(conn),
        disks=gather_disks(conn, disk_paths or {}),
        stream_retries=gather_stream_retries(conn),
        bronze_partitions=gather_bronze_partitions(conn),
        compactions=gather_compactions(conn),
    )


def _relation_exists(conn, name: str) -> bool:
    return conn.execute("select to_regclass(%s) is not null", (name,)).fetchone()[0]


# dbt commands that execute nodes. Orchestrators such as Cosmos run one `dbt run` or
# `dbt test` per node instead of one `dbt build`; their results count as much as a build's.
NODE_COMMANDS = ("build", "run", "test", "seed", "snapshot")

# The state of the project as dbt last left it: the latest full `dbt build`, with every node
# executed since by a narrower invocation taking the place of the build's result for that
# node. Without any full build, every recorded node invocation counts.
_LATEST_DBT_WINDOW = """
with node_runs as (
    select invocation_id, command, started_at, finished_at, status
    from ops.dbt_runs where command = any(%(commands)s)
),
since as (
    select coalesce(max(started_at), '-infinity'::timestamptz) as at
    from node_runs where command = 'build'
)
select invocation_id, finished_at, status,
    extract(epoch from max(finished_at) over () - min(started_at) over ())::float8
from node_runs where started_at >= (select at from since)
order by finished_at desc limit 1
"""
_LATEST_DBT_NODES = """
with node_runs as (
    select invocation_id, command, started_at, finished_at
    from ops.dbt_runs where command = any(%(commands)s)
),
since as (
    select coalesce(max(started_at), '-infinity'::timestamptz) as at
    from node_runs where command = 'build'
)
select distinct on (r.unique_id) r.resource_type, r.status, r.name
from ops.dbt_results r join node_runs d on d.invocation_id = r.invocation_id
where d.started_at >= (select at from since)
order by r.unique_id, d.finished_at desc
"""


def gather_dbt(conn) -> DbtState:
    """The latest dbt results (see ``_LATEST_DBT_WINDOW``), each gold model's last
    successful build and last export."""
    if not _relation_exists(conn, "ops.dbt_runs"):
        return DbtState()
    build = None
    commands = {"commands": list(NODE_COMMANDS)}
    row = conn.execute(_LATEST_DBT_WINDOW, commands).fetchone()
    if row is not None:
        counts: dict[tuple[str, str], int] = {}
        names: dict[tuple[str, str], list[str]] = {}
        for kind, status, name in conn.execute(_LATEST_DBT_NODES, commands):
            counts[(kind, status)] = counts.get((kind, status), 0) + 1
            if status not in ("success", "pass"):
                names.setdefault((kind, status), []).append(name)
        build = DbtBuild(row[0], row[1], row[2], counts, names, row[3])
    built = dict(
        conn.execute(
            "select r.name, max(coalesce(r.completed_at, d.finished_at)) "
            "from ops.dbt_results r join ops.dbt_runs d on d.invocation_id = r.invocation_id "
            "where r.resource_type = 'model' and r.status = 'success' and r.name = any(%s) "
            "group by r.name",
            (list(GOLD_MODELS),),
        ).fetchall()
    )
    exported: dict[str, datetime] = {}
    if _relation_exists(conn, "ops.exports"):  # absent until the first export, unless bootstrapped
        exported = dict(
            conn.execute(
                "select model, max(coalesce(read_started_at, exported_at)) from ops.exports "
                "group by model"
            ).fetchall()
        )
    good = conn.execute(
        "select max(finished_at) from ops.dbt_runs "
        "where command = any(%(commands)s) and status <> 'error'",
        commands,
    ).fetchone()[0]
    return DbtState(build, built, exported, good)


def gather_volumes(conn, history: int) -> dict[str, list[int]]:
    """Rows loaded by each entity's latest ``history + 1`` batch loads, latest first (stream
    micro-batches vary in size by nature and are left out)."""
    return {
        entity: [int(v) for v in rows]
        for entity, rows in conn.execute(
            "select entity, (array_agg(rows_loaded order by finished_at desc))[1:%s] "
            "from ops.loads where status in ('loaded', 'replaced') and mode = 'batch' "
            "group by entity",
            (history + 1,),
        )
    }


# From the catalog only, so the monitor needs no right on bronze: a load partition is an
# attached child named <entity>_l<load id> (a load) or <entity>_m<id> (merged loads), in
# bronze_loads (the default partition holds the small loads and does not count).
PARTITIONS_SQL = """
select p.relname,
       count(c.oid) filter (
           where cn.nspname = 'bronze_loads' and c.relname ~ ('^' || p.relname || '_[lm][0-9]+$')
       )
from pg_class p
join pg_namespace pn on pn.oid = p.relnamespace
left join pg_inherits i on i.inhparent = p.oid
left join pg_class c on c.oid = i.inhrelid
left join pg_namespace cn on cn.oid = c.relnamespace
where pn.nspname = 'bronze' and p.relkind = 'p' and p.relname = any(%s)
group by p.relname
"""


def gather_bronze_partitions(conn) -> dict[str, int]:
    return {name: int(count) for name, count in conn.execute(PARTITIONS_SQL, (list(ENTITY_ORDER),))}


def gather_compactions(conn) -> dict[str, Compaction]:
    """The latest compaction of each bronze table (``ops.compactions``, written by
    ``condo bronze compact``)."""
    if not _relation_exists(conn, "ops.compactions"):
        return {}
    return {
        entity: Compaction(status, finished_at, error)
        for entity, status, finished_at, error in conn.execute(
            "select distinct on (entity) entity, status, finished_at, error "
            "from ops.compactions order by entity, compaction_id desc"
        )
    }


ORPHANS_TABLE = "audit.orfaos_sao_reportados"  # stored by the warn test (store_failures)
# The entities with a reference to another entity's id (an "int" column): the ones that can
# have orphans.
ORPHAN_ENTITIES = tuple(e.name for e in ENTITIES if any(c.kind == "int" for c in e.columns))


def gather_orphans(conn) -> dict[str, OrphanStats]:
    """Excluded rows per entity as the last build stored them, and the rows silver kept."""
    if not _relation_exists(conn, ORPHANS_TABLE):
        return {}
    excluded = dict(
        conn.execute(f"select entidade, count(*) from {ORPHANS_TABLE} group by entidade")
    )
    result = {}
    for entity in ORPHAN_ENTITIES:
        if _relation_exists(conn, f"silver.{entity}"):
            kept = conn.execute(f"select count(*) from silver.{entity}").fetchone()[0]
            result[entity] = OrphanStats(entity, int(excluded.get(entity, 0)), int(kept))
    return result


def _existing(path: Path) -> Path:
    path = path.resolve()
    while not path.exists() and path != path.parent:
        path = path.parent
    return path


def disk_stats(location: str, path: Path) -> DiskStats:
    where = _existing(path)
    usage = shutil.disk_usage(where)
    return DiskStats(location, str(where), usage.free, usage.total)


def gather_disks(conn, paths: dict[str, Path]) -> list[DiskStats]:
    disks = [disk_stats(location, path) for location, path in paths.items()]
    local = conn.info.host in ("127.0.0.1", "localhost", "::1") or conn.info.host.startswith("/")
    if local:
        import psycopg

        try:
            with conn.transaction():
                # needs superuser or pg_read_all_settings; without it the check is left out
                data_dir = conn.execute("select current_setting('data_directory')").fetchone()[0]
        except psycopg.Error:
            data_dir = None
        if data_dir and Path(data_dir).exists():
            disks.append(disk_stats("database", Path(data_dir)))
    return disks


def to_json(snapshot: Snapshot, checks: list[Check]) -> str:
    return json.dumps(
        {
            "status": overall(checks),
            "taken_at": snapshot.taken_at.isoformat(),
            "checks": [asdict(c) for c in checks],
            "entities": {k: asdict(v) for k, v in snapshot.entities.items()},
        },
        indent=2,
        default=str,
    )


def to_prometheus(snapshot: Snapshot, checks: list[Check], limits: Thresholds | None = None) -> str:
    """Prometheus text exposition, e.g. for node_exporter's textfile collector (the metrics
    are defined in ``spark_loaders.monitor_metrics``)."""
    from spark_loaders.monitor_metrics import exposition

    return exposition(snapshot, checks, limits or Thresholds())
