"""Pure checks added for dbt, gold, export, volume, orphans, disk and the expected stream:
monitor.evaluate on hand-made snapshots, and the Prometheus text of the same snapshot."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from spark_loaders.domain import ENTITY_ORDER
from spark_loaders.monitor import (
    GOLD_MODELS,
    Compaction,
    DbtBuild,
    DbtState,
    DiskStats,
    EntityStats,
    OrphanStats,
    Snapshot,
    Thresholds,
    evaluate,
    overall,
)
from spark_loaders.monitor_metrics import exposition, write_atomically

NOW = datetime(2026, 1, 10, 12, 0, tzinfo=UTC)
HOUR = timedelta(hours=1)


def entities() -> dict[str, EntityStats]:
    return {
        e: EntityStats(e, files_loaded=1, rows_read=10, rows_loaded=10, last_loaded_at=NOW - HOUR)
        for e in ENTITY_ORDER
    }


def build(**names: list[str]) -> DbtBuild:
    grouped = {tuple(k.split("__")): v for k, v in names.items()}
    counts = {k: len(v) for k, v in grouped.items()}
    counts[("model", "success")] = 9
    status = "error" if any(k[1] in ("error", "fail") for k in grouped) else "success"
    return DbtBuild("inv-1", NOW - HOUR, status, counts, grouped, 12.5)


def state(b: DbtBuild | None = None, built=HOUR, exported=HOUR / 2) -> DbtState:
    return DbtState(
        b or build(),
        {m: NOW - built for m in GOLD_MODELS} if built is not None else {},
        {m: NOW - exported for m in GOLD_MODELS} if exported is not None else {},
        NOW - HOUR,
    )


def snap(**changes) -> Snapshot:
    base = {"taken_at": NOW, "entities": entities(), "dbt": state()}
    return Snapshot(**{**base, **changes})


def levels(snapshot: Snapshot, limits: Thresholds | None = None) -> dict[str, str]:
    return {c.name: c.level for c in evaluate(snapshot, limits or Thresholds())}


def test_a_healthy_build_is_ok_and_the_old_snapshot_shape_adds_no_checks() -> None:
    assert overall(evaluate(snap(), Thresholds())) == "ok"
    plain = Snapshot(NOW, entities())
    assert not any(
        c.name.startswith(("dbt", "export", "freshness.gold"))
        for c in evaluate(plain, Thresholds())
    )


def test_dbt_build_levels_name_the_nodes() -> None:
    failed = {
        c.name: c for c in evaluate(snap(dbt=state(build(test__fail=["unique_x"]))), Thresholds())
    }
    assert failed["dbt.build"].level == "error" and "unique_x" in failed["dbt.build"].message
    warned = {
        c.name: c
        for c in evaluate(
            snap(dbt=state(build(test__warn=["orfaos_sao_reportados"]))), Thresholds()
        )
    }
    assert warned["dbt.build"].level == "warn"
    assert "1 warn test(s)" in warned["dbt.build"].message
    assert "orfaos_sao_reportados" in warned["dbt.build"].message
    many = build(model__error=[f"m{i}" for i in range(8)])
    message = next(
        c.message for c in evaluate(snap(dbt=state(many)), Thresholds()) if c.name == "dbt.build"
    )
    assert "8 model error" in message and "and 3 more" in message
    never = levels(snap(dbt=DbtState()))
    assert never["dbt.build"] == "error"
    assert all(never[f"freshness.gold.{m}"] == "error" for m in GOLD_MODELS)


def test_gold_freshness_and_export_lag() -> None:
    stale = levels(snap(dbt=state(built=30 * HOUR, exported=HOUR)))
    assert {stale[f"freshness.gold.{m}"] for m in GOLD_MODELS} == {"warn"}
    assert {stale[f"export.{m}"] for m in GOLD_MODELS} == {"ok"}  # exported after the build
    lagging = levels(snap(dbt=state(built=3 * HOUR, exported=5 * HOUR)))
    assert {lagging[f"export.{m}"] for m in GOLD_MODELS} == {"warn"}  # 3 h behind > 1 h
    far = levels(snap(dbt=state(built=30 * HOUR, exported=None)))
    assert {far[f"export.{m}"] for m in GOLD_MODELS} == {"error"}  # never exported, > 24 h
    tolerant = levels(
        snap(dbt=state(built=3 * HOUR, exported=5 * HOUR)), Thresholds(export_lag_warn_hours=4)
    )
    assert tolerant["export.transacoes_por_morador"] == "ok"


def test_volume_drop_against_the_median_of_previous_loads() -> None:
    volumes = {
        "transacoes": [400, 1000, 900, 1100, 1000, 1000, 950, 1050, 5],  # median of 7 prior: 1000
        "imoveis": [600, 1000, 1000, 1000],
        "moradores": [1, 1000, 1000],  # only 2 previous loads: not compared
    }
    result = {c.name: c for c in evaluate(snap(volumes=volumes), Thresholds())}
    assert result["volume.transacoes"].level == "warn"
    assert result["volume.transacoes"].value == 0.4
    assert result["volume.imoveis"].level == "ok"
    assert (
        result["volume.moradores"].level == "ok" and "too few" in result["volume.moradores"].message
    )


def test_orphan_rate_and_disk_thresholds() -> None:
    orphans = {
        "imoveis": OrphanStats("imoveis", 10, 90),  # 10%: warn
        "transacoes": OrphanStats("transacoes", 30, 70),  # 30%: error
        "moradores": OrphanStats("moradores", 0, 0),
    }
    disks = [
        DiskStats("lake", "/data", 8, 100),
        DiskStats("state", "/s", 4, 100),
        DiskStats("database", "/pg", 10, 100),  # exactly 10%: fine
    ]
    result = levels(snap(orphans=orphans, disks=disks))
    assert (
        result["orphans.imoveis"],
        result["orphans.transacoes"],
        result["orphans.moradores"],
    ) == (
        "warn",
        "error",
        "ok",
    )
    assert (result["disk.lake"], result["disk.state"], result["disk.database"]) == (
        "warn",
        "error",
        "ok",
    )


def test_expected_stream() -> None:
    fresh = {"state": "running", "updated_at": (NOW - timedelta(minutes=1)).isoformat()}
    assert "stream.up" not in levels(snap(stream=None))
    expect = Thresholds(expect_stream=True)
    assert levels(snap(stream=None), expect)["stream.up"] == "error"
    assert levels(snap(stream=fresh), expect)["stream.up"] == "ok"
    assert levels(snap(stream={**fresh, "state": "stopped"}), expect)["stream.up"] == "error"
    old = {**fresh, "updated_at": (NOW - timedelta(minutes=30)).isoformat()}
    assert levels(snap(stream=old), expect)["stream.up"] == "error"


def test_exposition_carries_the_new_metrics_with_bounded_labels(tmp_path: Path) -> None:
    snapshot = snap(
        volumes={"transacoes": [100, 1000, 1000, 1000]},
        orphans={"imoveis": OrphanStats("imoveis", 1, 99)},
        disks=[DiskStats("lake", "/data", 25, 100)],
        stream={
            "state": "running",
            "updated_at": NOW.isoformat(),
            "last_batch": {"latency_ms": 1500, "files": [{"name": "x.csv"}]},
            "totals": {"batches": 3},
        },
    )
    expect = Thresholds(expect_stream=True)
    text = exposition(snapshot, evaluate(snapshot, expect), expect)
    unexpected = exposition(snapshot, evaluate(snapshot, Thresholds()), Thresholds())
    assert "\ncondo_stream_up " not in unexpected  # only an expected stream can be "down"
    assert 'condo_load_rows_latest{entity="transacoes"} 100.0' in text
    assert 'condo_load_rows_median{entity="transacoes"} 1000.0' in text
    assert 'condo_orphan_ratio{entity="imoveis"} 0.01' in text
    assert 'condo_disk_free_ratio{location="lake"} 0.25' in text
    assert "condo_stream_latency_seconds 1.5" in text
    assert "condo_stream_up 1.0" in text
    assert "condo_stream_batches_total 3.0" in text
    assert 'condo_dbt_nodes{resource_type="model",status="success"} 9.0' in text
    assert 'condo_export_lag_seconds{model="transacoes_por_condominio"} 0.0' in text
    assert 'condo_last_success_timestamp_seconds{stage="dbt_build"}' in text
    assert "x.csv" not in text  # file names never become labels
    out = tmp_path / "sub" / "condo.prom"
    write_atomically(out, text)
    assert out.read_text() == text and [p.name for p in out.parent.iterdir()] == ["condo.prom"]


def test_bronze_partitions_and_failed_compactions() -> None:
    """Only tables that exist are judged; the partition threshold is inclusive; a failed
    compaction warns while it is the latest one within the window."""
    assert not any(
        name.startswith(("bronze_partitions.", "compaction.")) for name in levels(snap())
    )
    counts = {"transacoes": 100, "imoveis": 99}
    got = levels(snap(bronze_partitions=counts))
    assert got["bronze_partitions.transacoes"] == "warn"
    assert got["bronze_partitions.imoveis"] == "ok"
    assert "bronze_partitions.moradores" not in got
    assert (
        levels(snap(bronze_partitions=counts), Thresholds(bronze_partitions_warn=101))[
            "bronze_partitions.transacoes"
        ]
        == "ok"
    )

    failed = Compaction("failed", NOW - HOUR, "could not lock bronze.transacoes")
    checks = {
        c.name: c
        for c in evaluate(
            snap(bronze_partitions=counts, compactions={"transacoes": failed}), Thresholds()
        )
    }
    assert checks["compaction.transacoes"].level == "warn"
    assert "could not lock bronze.transacoes" in checks["compaction.transacoes"].message
    old = Compaction("failed", NOW - 25 * HOUR, "x")
    done = Compaction("compacted", NOW - HOUR)
    assert (
        levels(snap(bronze_partitions=counts, compactions={"transacoes": old}))[
            "compaction.transacoes"
        ]
        == "ok"
    )
    assert (
        levels(snap(bronze_partitions=counts, compactions={"transacoes": done}))[
            "compaction.transacoes"
        ]
        == "ok"
    )

    snapshot = snap(bronze_partitions=counts, compactions={"transacoes": failed})
    text = exposition(snapshot, evaluate(snapshot, Thresholds()), Thresholds())
    assert 'condo_bronze_load_partitions{entity="transacoes"} 100.0' in text
    assert "condo_bronze_load_partitions_warn 100.0" in text
    assert 'condo_compaction_last_failed{entity="transacoes"} 1.0' in text
    assert 'condo_check_status{check="compaction.transacoes"} 1.0' in text
    assert "could not lock" not in text  # error text never becomes a label
