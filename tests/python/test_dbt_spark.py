"""The spark target: `dbt build` passes on dbt-spark (session, parquet) over bronze loaded
by the real loader's spark target, and gives the same gold rows as the postgres target
built from the same sample rows."""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import sys
from decimal import Decimal
from pathlib import Path

import dbt_bronze as bronze
import psycopg
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from dbt_runner import PROJECT_ROOT, run_dbt
from dbt_spark_job import LOADED_AT

HERE = Path(__file__).resolve().parent
GOLD = (
    ("transacoes_por_condominio", ("condominio_id",)),
    ("transacoes_por_morador", ("morador_id",)),
    ("transacoes_diarias_por_tipo_imovel", ("data_transacao", "tipo_imovel")),
)
SPARK_TYPES = {
    "transacoes_por_condominio": [
        ("condominio_id", pa.int32()),
        ("nome_condominio", pa.string()),
        ("qtd_transacoes", pa.int64()),
        ("valor_total", pa.decimal128(20, 2)),
    ],
    "transacoes_por_morador": [
        ("morador_id", pa.int32()),
        ("nome_morador", pa.string()),
        ("condominio_id", pa.int32()),
        ("qtd_transacoes", pa.int64()),
        ("valor_total", pa.decimal128(20, 2)),
    ],
    "transacoes_diarias_por_tipo_imovel": [
        ("data_transacao", pa.date32()),
        ("tipo_imovel", pa.string()),
        ("qtd_transacoes", pa.int64()),
        ("valor_total", pa.decimal128(20, 2)),
        ("valor_medio", pa.decimal128(15, 2)),
    ],
}


def normalise(value):
    if isinstance(value, dt.datetime):
        return value.astimezone(dt.UTC) if value.tzinfo else value.replace(tzinfo=dt.UTC)
    return value


def spark_gold(warehouse: Path, model: str) -> tuple[pa.Schema, list[tuple]]:
    table = pq.read_table(warehouse / "gold.db" / model)
    rows = [tuple(normalise(v) for v in row.values()) for row in table.to_pylist()]
    return table.schema, sorted(rows, key=repr)


def spark_env(spark_dir: Path) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        CONDO_SPARK_DIR=str(spark_dir),
        CONDO_SPARK_MASTER="local[2]",
        CONDO_SHUFFLE_PARTITIONS="2",
        CONDO_SPARK_DRIVER_MEMORY="1g",
        DBT_SEND_ANONYMOUS_USAGE_STATS="false",
        DBT_USE_COLORS="false",
        PYTHONPATH=os.pathsep.join([str(PROJECT_ROOT), env.get("PYTHONPATH", "")]),
    )
    return env


def assert_gold_equals_postgres_build(fresh_db, warehouse: Path, workdir: Path) -> None:
    """Build the sample on PostgreSQL (same bronze rows, same load time) and check that every
    gold table in the Spark ``warehouse`` has its contract types and equals it row for row."""
    conninfo = fresh_db.psycopg_kwargs()
    bronze.create_postgres_bronze(conninfo)
    load = bronze.Load(1, LOADED_AT, bronze.sample_rows(PROJECT_ROOT / "data" / "sample"))
    bronze.insert_postgres(conninfo, [load])
    run_dbt(
        ["build", "--exclude-resource-type", "test", "--exclude-resource-type", "unit_test"],
        workdir=workdir,
    )
    with psycopg.connect(**conninfo) as conn:
        for model, _key in GOLD:
            schema, spark_rows = spark_gold(warehouse, model)
            assert [(f.name, f.type) for f in schema] == SPARK_TYPES[model], model
            pg_rows = sorted(
                (
                    tuple(normalise(v) for v in row)
                    for row in conn.execute(f"select * from gold.{model}").fetchall()
                ),
                key=repr,
            )
            assert spark_rows == pg_rows, model
            assert pg_rows, model


@pytest.mark.slow
def test_spark_build_passes_and_matches_postgres(fresh_db, tmp_path):
    spark_dir = tmp_path / "spark"
    env = spark_env(spark_dir)
    job = subprocess.run(
        [sys.executable, str(HERE / "dbt_spark_job.py"), str(tmp_path / "spark-run"), "build"],
        cwd=PROJECT_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert job.returncode == 0, job.stdout[-8000:] + job.stderr[-3000:]

    warehouse = spark_dir / "warehouse"
    assert_gold_equals_postgres_build(fresh_db, warehouse, tmp_path / "pg-run")
    condominios = dict(
        (r[0], (r[2], r[3])) for r in spark_gold(warehouse, "transacoes_por_condominio")[1]
    )
    assert condominios == {
        1: (11, Decimal("10655000.00")),
        2: (10, Decimal("9865000.00")),
        3: (1, Decimal("1080000.00")),
    }


@pytest.mark.slow
def test_spark_incremental_runs_converge_to_the_full_refresh(tmp_path):
    """The replace_scope strategy on Spark (parquet cannot delete): after late residents,
    late condominiums and re-loaded rows, incremental == full refresh, as on postgres."""
    job = subprocess.run(
        [sys.executable, str(HERE / "dbt_spark_job.py"), str(tmp_path / "run"), "--incremental"],
        cwd=PROJECT_ROOT,
        env=spark_env(tmp_path / "spark"),
        capture_output=True,
        text=True,
        timeout=900,
    )
    lines = [line for line in job.stdout.splitlines() if line.startswith("RESULT ")]
    assert lines, job.stdout[-8000:] + job.stderr[-3000:]
    result = json.loads(lines[-1].removeprefix("RESULT "))
    assert result["dbt_ok"], job.stdout[-8000:]
    assert result["differences"] == []
    assert result["identical"]
    assert result["silver_ids"] == [101, 102, 103, 105]
