"""End to end: `condo pipeline` on the shipped sample, from a fresh database, checked
against the Parquet files read back with pyarrow (not Spark) and against an independent
computation of the reports straight from the CSV text."""

from __future__ import annotations

import csv
import os
import re
import subprocess
import sys
from collections import defaultdict
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path

import psycopg
import pyarrow.dataset as ds
import pytest

pytestmark = pytest.mark.slow

PROJECT_ROOT = Path(__file__).resolve().parents[2]
SAMPLE_DIR = PROJECT_ROOT / "data" / "sample"
CENT = Decimal("0.01")


def _rows(name: str) -> list[list[str]]:
    with (SAMPLE_DIR / f"{name}.csv").open(encoding="utf-8", newline="") as fh:
        return list(csv.reader(fh))[1:]


def expected_reports() -> dict[str, list[tuple]]:
    """The three gold reports computed by hand from the sample: positional ids 1..n,
    addresses re-joined, every foreign key of the sample valid."""
    condominios = {i: row[0] for i, row in enumerate(_rows("condominios"), start=1)}
    imoveis = {i: (row[0], int(row[1])) for i, row in enumerate(_rows("imoveis"), start=1)}
    moradores = {i: (row[0], int(row[1])) for i, row in enumerate(_rows("moradores"), start=1)}
    transacoes = [(int(r[0]), int(r[1]), r[2], Decimal(r[3])) for r in _rows("transacoes")]

    per_condo = {cid: [0, Decimal("0.00")] for cid in condominios}
    per_resident = {mid: [0, Decimal("0.00")] for mid in moradores}
    daily: dict[tuple[str, str], list] = defaultdict(lambda: [0, Decimal("0.00")])
    for imovel_id, morador_id, day, value in transacoes:
        tipo, condominio_id = imoveis[imovel_id]
        for bucket in (per_condo[condominio_id], per_resident[morador_id], daily[(day, tipo)]):
            bucket[0] += 1
            bucket[1] += value
    return {
        "transacoes_por_condominio": [
            (cid, condominios[cid], n, total) for cid, (n, total) in sorted(per_condo.items())
        ],
        "transacoes_por_morador": [
            (mid, moradores[mid][0], moradores[mid][1], n, total)
            for mid, (n, total) in sorted(per_resident.items())
        ],
        "transacoes_diarias_por_tipo_imovel": [
            (day, tipo, n, total, (total / n).quantize(CENT, rounding=ROUND_HALF_UP))
            for (day, tipo), (n, total) in sorted(daily.items())
        ],
    }


COLUMNS = {
    "transacoes_por_condominio": [
        "condominio_id",
        "nome_condominio",
        "qtd_transacoes",
        "valor_total",
    ],
    "transacoes_por_morador": [
        "morador_id",
        "nome_morador",
        "condominio_id",
        "qtd_transacoes",
        "valor_total",
    ],
    "transacoes_diarias_por_tipo_imovel": [
        "data_transacao",
        "tipo_imovel",
        "qtd_transacoes",
        "valor_total",
        "valor_medio",
    ],
}


def read_parquet(path: Path, columns: list[str]) -> list[tuple]:
    table = ds.dataset(path, format="parquet", partitioning="hive").to_table(columns=columns)
    rows = [tuple(row[c] for c in columns) for row in table.to_pylist()]
    return sorted(rows, key=lambda r: (r[0], r[1]))


@pytest.fixture(scope="module")
def pipeline_run(pg_server, tmp_path_factory):
    """One real `condo pipeline` in a subprocess (its own Spark), on a brand-new database."""
    name = "e2e_pipeline"
    admin = pg_server.psycopg_kwargs()
    with psycopg.connect(**admin, autocommit=True) as conn:
        conn.execute(f"drop database if exists {name} with (force)")
        conn.execute(f"create database {name}")
    url = pg_server.url().rsplit("/", 1)[0] + f"/{name}"
    out = tmp_path_factory.mktemp("lake") / "gold"
    env = {**os.environ, "CONDO_DATABASE_URL": url, "CONDO_SPARK_MASTER": "local[2]"}
    cmd = [
        sys.executable,
        "-m",
        "spark_loaders.cli",
        "pipeline",
        "--source",
        str(SAMPLE_DIR),
        "--out",
        str(out),
    ]
    first = subprocess.run(
        cmd, cwd=PROJECT_ROOT, env=env, capture_output=True, text=True, timeout=600
    )
    assert first.returncode == 0, first.stdout[-3000:] + first.stderr[-3000:]
    snapshot = {m: read_parquet(out / m, COLUMNS[m]) for m in COLUMNS}
    second = subprocess.run(
        cmd, cwd=PROJECT_ROOT, env=env, capture_output=True, text=True, timeout=600
    )
    yield {"out": out, "url": url, "first": first, "second": second, "snapshot": snapshot}
    with psycopg.connect(**admin, autocommit=True) as conn:
        conn.execute(f"drop database if exists {name} with (force)")


def test_condominium_totals_match_the_issue(pipeline_run) -> None:
    rows = read_parquet(
        pipeline_run["out"] / "transacoes_por_condominio", COLUMNS["transacoes_por_condominio"]
    )
    assert [(r[0], r[2], r[3]) for r in rows] == [
        (1, 11, Decimal("10655000.00")),
        (2, 10, Decimal("9865000.00")),
        (3, 1, Decimal("1080000.00")),
    ]


@pytest.mark.parametrize("model", list(COLUMNS))
def test_reports_equal_the_hand_computation(pipeline_run, model: str) -> None:
    actual = read_parquet(pipeline_run["out"] / model, COLUMNS[model])
    expected = expected_reports()[model]
    normalised = [tuple(str(v) if hasattr(v, "isoformat") else v for v in row) for row in actual]
    assert normalised == expected


def test_parquet_types_are_exact(pipeline_run) -> None:
    import pyarrow as pa

    schema = ds.dataset(
        pipeline_run["out"] / "transacoes_diarias_por_tipo_imovel",
        format="parquet",
        partitioning="hive",
    ).schema
    assert schema.field("data_transacao").type == pa.date32()
    assert schema.field("qtd_transacoes").type == pa.int64()
    assert pa.types.is_decimal(schema.field("valor_total").type)
    assert schema.field("valor_total").type.scale == 2
    assert schema.field("valor_medio").type.scale == 2


def test_addresses_keep_their_commas_in_silver(pipeline_run) -> None:
    with psycopg.connect(pipeline_run["url"]) as conn:
        rows = conn.execute(
            "select condominio_id, endereco from silver.condominios order by 1"
        ).fetchall()
    expected = [(i, ",".join(r[1:])) for i, r in enumerate(_rows("condominios"), start=1)]
    assert rows == expected
    assert rows[0][1] == "Rua das Palmeiras, 123, Centro"


def test_rerun_is_a_noop_for_loading_and_leaves_identical_outputs(pipeline_run) -> None:
    second = pipeline_run["second"]
    assert second.returncode == 0, second.stdout[-3000:] + second.stderr[-3000:]
    with psycopg.connect(pipeline_run["url"]) as conn:
        statuses = conn.execute(
            "select status, count(*) from ops.loads group by 1 order by 1"
        ).fetchall()
        counts = [
            conn.execute(f"select count(*) from bronze.{t}").fetchone()[0]
            for t in ("condominios", "imoveis", "moradores", "transacoes")
        ]
    assert dict(statuses) == {"loaded": 4, "skipped": 4}
    assert counts == [3, 36, 39, 22]
    for model, rows in pipeline_run["snapshot"].items():
        assert read_parquet(pipeline_run["out"] / model, COLUMNS[model]) == rows


def test_each_run_records_its_dbt_build_and_exports(pipeline_run) -> None:
    for run in ("first", "second"):
        assert "history not recorded" not in pipeline_run[run].stderr
    with psycopg.connect(pipeline_run["url"]) as conn:
        builds = conn.execute(
            "select invocation_id, status from ops.dbt_runs where command = 'build' "
            "order by finished_at"
        ).fetchall()
        exports = conn.execute(
            "select dbt_invocation_id, count(*) from ops.exports group by 1"
        ).fetchall()
        models = conn.execute(
            "select count(*) from ops.dbt_results where resource_type = 'model' "
            "and status = 'success' and invocation_id = %s",
            (builds[-1][0],),
        ).fetchone()[0]
    assert len(builds) == 2 and all(status in ("success", "warn") for _, status in builds)
    # each export read the build of its own run, one row per gold model
    assert sorted(exports) == sorted((invocation, len(COLUMNS)) for invocation, _ in builds)
    assert models >= len(COLUMNS)


def test_pipeline_logs_stage_timings_and_prints_reports(pipeline_run) -> None:
    first = pipeline_run["first"]
    for stage in ("load", "dbt build", "export"):  # progress: log lines on stderr
        assert re.search(rf"INFO spark_loaders\.pipeline: <== {stage}: ok", first.stderr), stage
    assert "gold.transacoes_por_condominio" in first.stdout  # results: stdout


def test_a_failing_stage_is_named_and_exits_non_zero(tmp_path, fresh_db) -> None:
    bad = tmp_path / "condominios.csv"
    bad.write_text("nome\nsem endereco\n", encoding="utf-8")  # lacks the required endereco column
    env = {**os.environ, "CONDO_DATABASE_URL": fresh_db.url(), "CONDO_SPARK_MASTER": "local[1]"}
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "spark_loaders.cli",
            "pipeline",
            "--source",
            str(bad),
            "--out",
            str(tmp_path / "o"),
        ],
        cwd=PROJECT_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode != 0
    assert "stage 'load' failed" in result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize("model", list(COLUMNS))
def test_parquet_equals_the_gold_relation_row_for_row(pipeline_run, model: str) -> None:
    columns = COLUMNS[model]
    with psycopg.connect(pipeline_run["url"]) as conn:
        gold = conn.execute(f"select {', '.join(columns)} from gold.{model}").fetchall()
    assert read_parquet(pipeline_run["out"] / model, columns) == sorted(
        gold, key=lambda r: (r[0], r[1])
    )
