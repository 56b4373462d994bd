"""Compaction end to end: files loaded by the real loader (every file a bulk partition), dbt
built incrementally before and after ``condo bronze compact``, a ``--force`` reload of a
merged load, and silver and gold compared with what they were and with a full refresh."""

from __future__ import annotations

from pathlib import Path

import pytest
from dbt_runner import run_dbt
from load_helpers import load, rows, write
from test_dbt_postgres import SILVER_GOLD_TABLES

from spark_loaders import cli
from spark_loaders.domain import ENTITY_ORDER

SAMPLE = Path(__file__).resolve().parents[2] / "data" / "sample"
TABLES = SILVER_GOLD_TABLES
BUILD = ["build", "--exclude-resource-type", "test", "--exclude-resource-type", "unit_test"]
BRONZE = (
    "select * from bronze.{entity} order by _load_id, _source_line"  # every column, lineage too
)


def snapshot(db) -> dict[str, list[tuple]]:
    return {t: sorted(rows(db, f"select * from {t}"), key=repr) for t in TABLES}


def bronze(db) -> dict[str, list[tuple]]:
    return {e: rows(db, BRONZE.format(entity=e)) for e in ENTITY_ORDER}


def transactions(path: Path, ids: range, *, cents: int = 0) -> Path:
    lines = ["transacao_id,imovel_id,morador_id,data_transacao,valor_transacao"]
    lines += [
        f"{i},{i % 35 + 1},{i % 38 + 1},2024-03-{i % 28 + 1:02d},{i}.{cents:02d}" for i in ids
    ]
    return write(path, "\n".join(lines) + "\n")


def merged_partitions(db) -> list[str]:
    return [
        r[0]
        for r in rows(
            db,
            "select c.relname from pg_inherits i join pg_class c on c.oid = i.inhrelid "
            "where c.relname ~ '_m[0-9]+$' order by 1",
        )
    ]


@pytest.mark.slow
def test_dbt_incremental_is_unchanged_by_compaction(fresh_db, spark, tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("CONDO_LOAD_BULK_MIN_BYTES", "1")  # every file its own partition
    workdir = tmp_path / "dbt"
    dims = [SAMPLE / f"{e}.csv" for e in ("condominios", "imoveis", "moradores")]
    t1 = transactions(tmp_path / "t1" / "transacoes.csv", range(1000, 1040))
    t2 = transactions(tmp_path / "t2" / "transacoes.csv", range(1040, 1080))
    t3 = transactions(tmp_path / "t3" / "transacoes.csv", range(1030, 1060), cents=50)
    assert all(f.status == "loaded" for f in load(spark, *dims, t1, t2).files)
    run_dbt(BUILD, workdir=workdir)
    assert all(f.status == "loaded" for f in load(spark, t3).files)  # re-sends 30 ids
    run_dbt(BUILD, workdir=workdir)
    before_bronze, before = bronze(fresh_db), snapshot(fresh_db)
    assert len(before["silver.transacoes"]) == 80

    assert cli.main(["bronze", "compact", "--older-than", "0"]) == 0
    # Three partitions of transactions became one; the dimensions had one partition each.
    assert [m.split("_m")[0] for m in merged_partitions(fresh_db)] == ["transacoes"]
    assert bronze(fresh_db) == before_bronze
    run_dbt(BUILD, workdir=workdir)  # incremental, nothing new
    assert snapshot(fresh_db) == before

    # --force reload of t2, whose load now lives in the merged partition, plus a new file.
    t2_load = rows(
        fresh_db,
        "select load_id from ops.loads where source_path = %s and status = 'loaded'",
        (str(t2),),
    )[0][0]
    t4 = transactions(tmp_path / "t4" / "transacoes.csv", range(1075, 1090), cents=7)
    reloaded = load(spark, t2, t4, force=True).files
    assert [f.status for f in reloaded] == ["loaded", "loaded"]
    assert rows(fresh_db, "select status from ops.loads where load_id = %s", (t2_load,)) == [
        ("replaced",)
    ]
    assert rows(
        fresh_db, "select count(*) from bronze.transacoes where _load_id = %s", (t2_load,)
    ) == [(0,)]
    run_dbt(BUILD, workdir=workdir)
    incremental = snapshot(fresh_db)
    assert len(incremental["silver.transacoes"]) == 90
    assert incremental != before
    run_dbt([*BUILD, "--full-refresh"], workdir=workdir)
    assert snapshot(fresh_db) == incremental


def test_pipeline_compact_option_is_checked() -> None:
    from spark_loaders.errors import CondoError
    from spark_loaders.pipeline import run_pipeline

    with pytest.raises(CondoError, match="postgres target only"):
        run_pipeline(source=[SAMPLE], out=Path("unused"), target="spark", compact_older_than=1)
    with pytest.raises(CondoError, match="zero or more"):
        run_pipeline(source=[SAMPLE], out=Path("unused"), compact_older_than=-1)


@pytest.mark.slow
def test_pipeline_compacts_between_load_and_dbt(fresh_db, spark, tmp_path, monkeypatch) -> None:
    from spark_loaders.pipeline import run_pipeline

    monkeypatch.setenv("CONDO_LOAD_BULK_MIN_BYTES", "1")
    extra = transactions(tmp_path / "extra" / "transacoes.csv", range(1000, 1010))
    result = run_pipeline(
        source=[SAMPLE, extra], out=tmp_path / "lake", compact_older_than=0, echo=lambda _: None
    )
    assert [s.name for s in result.stages] == ["start", "load", "compact", "dbt build", "export"]
    assert result.ok
    assert rows(fresh_db, "select entity, status, cardinality(load_ids) from ops.compactions") == [
        ("transacoes", "compacted", 2)
    ]
    sample_rows = len((SAMPLE / "transacoes.csv").read_text().strip().splitlines()) - 1
    assert rows(fresh_db, "select count(*) from silver.transacoes") == [(sample_rows + 10,)]
