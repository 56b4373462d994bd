"""Overlapping runs against a real PostgreSQL: the run lock around
``condo pipeline`` / ``condo dbt build``, and an export racing a gold table swap."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import psycopg
import pyarrow.dataset as ds
import pytest
from export_gold_data import CONDOMINIO_ROWS, create_gold

from spark_loaders.run_lock import exclusive_run

ROOT = Path(__file__).resolve().parents[2]


def condo(*args: str) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "spark_loaders.cli", *args],
        cwd=ROOT,
        env={**os.environ, "DBT_SEND_ANONYMOUS_USAGE_STATS": "false"},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


@pytest.mark.slow  # three condo subprocesses, one waiting on the lock, then dbt seed
def test_a_second_pipeline_or_dbt_build_waits_or_fails_with_no_wait(fresh_db, tmp_path) -> None:
    with exclusive_run("pipeline", log=lambda _m: None):
        refused = condo("pipeline", "--no-wait", "--out", str(tmp_path / "lake"))
        out, err = refused.communicate(timeout=120)
        assert refused.returncode == 1, (out, err)
        assert "another pipeline or dbt build is running" in err
        assert "condo pipeline (pid" in err  # names the holder
        assert len(err.strip().splitlines()) == 1

        refused_dbt = condo("dbt", "seed", "--no-wait")
        out, err = refused_dbt.communicate(timeout=120)
        assert refused_dbt.returncode == 1 and "not waiting (--no-wait)" in err, (out, err)

        waiting = condo("dbt", "seed")
        time.sleep(8)
        assert waiting.poll() is None, "dbt seed ran while another run held the lock"
        with psycopg.connect(fresh_db.url()) as conn:
            assert conn.execute("select to_regclass('silver.tipos_imovel')").fetchone()[0] is None
    out, err = waiting.communicate(timeout=300)
    assert waiting.returncode == 0, (out[-3000:], err[-3000:])
    assert "waiting for another pipeline or dbt build" in err
    with psycopg.connect(fresh_db.url()) as conn:
        assert conn.execute("select count(*) from silver.tipos_imovel").fetchone()[0] > 0


def test_export_during_a_gold_swap_writes_the_whole_new_table(spark, fresh_db, tmp_path) -> None:
    from spark_loaders.export import export_gold

    with psycopg.connect(fresh_db.url()) as conn:
        create_gold(conn)
    model = "transacoes_por_condominio"
    swap = psycopg.connect(fresh_db.url())
    # What dbt's table materialization does, in one transaction, left open for a while.
    swap.execute(
        f"create table gold.{model}__dbt_tmp as select condominio_id, nome_condominio, "
        f"qtd_transacoes + 100 as qtd_transacoes, valor_total from gold.{model}"
    )
    swap.execute(f"alter table gold.{model} rename to {model}__dbt_backup")
    swap.execute(f"alter table gold.{model}__dbt_tmp rename to {model}")
    result: dict[str, object] = {}

    def export() -> None:
        try:
            result["value"] = export_gold(spark, out=tmp_path / "lake", models=[model])
        except BaseException as exc:  # reported by the assertion below
            result["error"] = exc

    worker = threading.Thread(target=export, daemon=True)
    worker.start()
    time.sleep(4)
    swap.commit()
    swap.execute(f"drop table gold.{model}__dbt_backup")
    swap.commit()
    swap.close()
    worker.join(300)
    assert "error" not in result, result.get("error")
    table = ds.dataset(tmp_path / "lake" / model, format="parquet").to_table()
    assert table.num_rows == len(CONDOMINIO_ROWS)
    assert sorted(table.column("qtd_transacoes").to_pylist()) == sorted(
        r[2] + 100 for r in CONDOMINIO_ROWS
    )
