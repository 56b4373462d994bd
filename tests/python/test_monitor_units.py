"""Pure checks of monitor.evaluate: thresholds turn ledger numbers into ok / warn / error."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from spark_loaders.domain import ENTITY_ORDER
from spark_loaders.monitor import (
    EntityStats,
    Snapshot,
    Thresholds,
    evaluate,
    overall,
    to_prometheus,
)

NOW = datetime(2026, 1, 10, 12, 0, tzinfo=UTC)


def healthy(entity: str, **changes) -> EntityStats:
    base = {
        "files_loaded": 1,
        "rows_read": 1000,
        "rows_loaded": 1000,
        "rows_rejected": 0,
        "last_loaded_at": NOW - timedelta(hours=1),
    }
    return EntityStats(entity, **{**base, **changes})


def snapshot(stream=None, **overrides: EntityStats) -> Snapshot:
    entities = {e: overrides.get(e, healthy(e)) for e in ENTITY_ORDER}
    return Snapshot(NOW, entities, stream)


def levels(checks) -> dict[str, str]:
    return {c.name: c.level for c in checks}


def test_all_healthy_is_ok() -> None:
    checks = evaluate(snapshot(), Thresholds())
    assert overall(checks) == "ok"
    assert len(checks) == 3 * len(ENTITY_ORDER)


def test_reject_rate_thresholds() -> None:
    limits = Thresholds(reject_rate_warn=0.01, reject_rate_error=0.05)
    warn = healthy("imoveis", rows_rejected=20, rows_loaded=980, rejects_by_reason={"required": 20})
    error = healthy("transacoes", rows_rejected=60, rows_loaded=940)
    result = levels(evaluate(snapshot(imoveis=warn, transacoes=error), limits))
    assert result["reject_rate.imoveis"] == "warn"
    assert result["reject_rate.transacoes"] == "error"
    assert result["reject_rate.moradores"] == "ok"


def test_rate_exactly_at_the_threshold_is_not_a_breach() -> None:
    at = healthy("imoveis", rows_rejected=10, rows_loaded=990)
    assert levels(evaluate(snapshot(imoveis=at), Thresholds()))["reject_rate.imoveis"] == "ok"


def test_freshness_and_never_loaded() -> None:
    stale = healthy("moradores", last_loaded_at=NOW - timedelta(hours=30))
    dead = healthy("condominios", last_loaded_at=NOW - timedelta(hours=80))
    never = EntityStats("transacoes")
    result = levels(
        evaluate(snapshot(moradores=stale, condominios=dead, transacoes=never), Thresholds())
    )
    assert result["freshness.moradores"] == "warn"
    assert result["freshness.condominios"] == "error"
    assert result["freshness.transacoes"] == "error"


def test_failed_or_rejected_files_are_errors() -> None:
    bad = healthy("imoveis", files_rejected=1, last_error="missing required column tipo")
    checks = evaluate(snapshot(imoveis=bad), Thresholds())
    failure = next(c for c in checks if c.name == "failures.imoveis")
    assert failure.level == "error" and "missing required column" in failure.message
    assert overall(checks) == "error"


def test_stream_failed_and_stalled() -> None:
    failed = {"state": "failed", "error": "connection refused", "updated_at": NOW.isoformat()}
    stalled = {
        "state": "running",
        "error": None,
        "updated_at": (NOW - timedelta(minutes=30)).isoformat(),
    }
    fine = {
        "state": "running",
        "error": None,
        "updated_at": NOW.isoformat(),
        "totals": {"batches": 3},
    }
    assert levels(evaluate(snapshot(stream=failed), Thresholds()))["stream"] == "error"
    assert levels(evaluate(snapshot(stream=stalled), Thresholds()))["stream"] == "warn"
    assert levels(evaluate(snapshot(stream=fine), Thresholds()))["stream"] == "ok"


def test_prometheus_exposition_has_a_status_per_check() -> None:
    snap = snapshot(imoveis=healthy("imoveis", rows_rejected=60, rows_loaded=940))
    text = to_prometheus(snap, evaluate(snap, Thresholds()))
    assert 'condo_check_status{check="reject_rate.imoveis"} 2' in text
    assert 'condo_rows{entity="imoveis",outcome="rejected"} 60' in text
    assert 'condo_last_load_age_seconds{entity="imoveis"} 3600' in text
