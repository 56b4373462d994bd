"""Health checks over what the pipeline records: the load ledger, the quarantine counts,
bronze freshness and the streaming status file.

``gather`` reads a :class:`Snapshot` from PostgreSQL (and the stream's status file);
``evaluate`` is a pure function from a snapshot and thresholds to checks, each ``ok``,
``warn`` or ``error``. ``condo monitor`` prints them as a table, JSON or Prometheus text
and exits 0 / 1 / 2 (ok / warn / error), so cron, CI or any alerting tool can act on it.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ENTITIES = ("condominios", "imoveis", "moradores", "transacoes")
LEVELS = {"ok": 0, "warn": 1, "error": 2}


@dataclass(frozen=True)
class Thresholds:
    since_hours: float = 24.0
    freshness_warn_hours: float = 24.0
    freshness_error_hours: float = 72.0  # the same default as dbt's bronze_freshness_error_hours
    reject_rate_warn: float = 0.01
    reject_rate_error: float = 0.05
    stream_stale_minutes: float = 10.0


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


@dataclass(frozen=True)
class Snapshot:
    taken_at: datetime
    entities: dict[str, EntityStats]
    stream: dict[str, Any] | None = None


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
    for entity in ENTITIES:
        stats = snapshot.entities.get(entity, EntityStats(entity))
        failed = stats.files_failed + stats.files_rejected
        checks.append(
            Check(
                f"failures.{entity}",
                "error" if failed else "ok",
                f"{stats.files_failed} failed and {stats.files_rejected} wholly rejected files"
                + (f"; last error: {stats.last_error}" if stats.last_error else ""),
                float(failed),
            )
        )
        rate = _rate(stats)
        level = (
            "error"
            if rate > limits.reject_rate_error
            else "warn"
            if rate > limits.reject_rate_warn
            else "ok"
        )
        reasons = ", ".join(f"{k} {v}" for k, v in sorted(stats.rejects_by_reason.items()))
        checks.append(
            Check(
                f"reject_rate.{entity}",
                level,
                f"{stats.rows_rejected} of {stats.rows_read} rows rejected ({rate:.2%})"
                + (f": {reasons}" if reasons else ""),
                rate,
            )
        )
        if stats.last_loaded_at is None:
            checks.append(Check(f"freshness.{entity}", "error", "never loaded", None))
        else:
            age_h = (snapshot.taken_at - stats.last_loaded_at).total_seconds() / 3600
            level = (
                "error"
                if age_h > limits.freshness_error_hours
                else "warn"
                if age_h > limits.freshness_warn_hours
                else "ok"
            )
            checks.append(
                Check(f"freshness.{entity}", level, f"last load {age_h:.1f} h ago", age_h * 3600)
            )
    if snapshot.stream is not None:
        checks.append(_stream_check(snapshot, limits))
    return checks


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
           filter (where status in ('failed', 'rejected') and finished_at >= %(since)s))[1]
from ops.loads
group by entity
"""

REASONS_SQL = """
select entity, reason.key, sum(reason.value::bigint)
from ops.loads, jsonb_each_text(rejects_by_reason) as reason
where status = 'loaded' and finished_at >= %(since)s
group by 1, 2
"""


def gather(conn, *, since_hours: float, stream_status: Path | None) -> Snapshot:
    """Read the ledger (``ops.loads``) and the stream's status file."""
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
                entity, *(int(v) for v in row[1:8]), reasons.get(entity, {}), row[8], row[9]
            )
    stream = None
    if stream_status is not None and stream_status.is_file():
        try:
            stream = json.loads(stream_status.read_text())
        except (OSError, json.JSONDecodeError) as exc:
            stream = {"state": "unknown", "error": f"unreadable status file: {exc}"}
    return Snapshot(now, entities, stream)


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


def to_prometheus(snapshot: Snapshot, checks: list[Check]) -> str:
    """Prometheus text exposition, e.g. for node_exporter's textfile collector."""
    lines = [
        "# HELP condo_check_status Health check level: 0 ok, 1 warn, 2 error.",
        "# TYPE condo_check_status gauge",
    ]
    lines += [f'condo_check_status{{check="{c.name}"}} {LEVELS[c.level]}' for c in checks]
    lines += [
        "# HELP condo_rows Rows read, loaded and rejected by loads in the window.",
        "# TYPE condo_rows gauge",
    ]
    for s in snapshot.entities.values():
        for outcome, value in (
            ("read", s.rows_read),
            ("loaded", s.rows_loaded),
            ("rejected", s.rows_rejected),
        ):
            lines.append(f'condo_rows{{entity="{s.entity}",outcome="{outcome}"}} {value}')
    lines += [
        "# HELP condo_last_load_age_seconds Seconds since the entity's last successful load.",
        "# TYPE condo_last_load_age_seconds gauge",
    ]
    for s in snapshot.entities.values():
        if s.last_loaded_at is not None:
            age = (snapshot.taken_at - s.last_loaded_at).total_seconds()
            lines.append(f'condo_last_load_age_seconds{{entity="{s.entity}"}} {age:.0f}')
    return "\n".join(lines) + "\n"
