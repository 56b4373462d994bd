"""End-to-end tests of the gold export: real PostgreSQL (``fresh_db``), real Spark
(``spark``), datasets read back with pyarrow, a real SIGKILL in the middle of an export.

The gold tables are created by hand per docs/contracts.md (see export_gold_data.py), so
these tests do not depend on the dbt project; the pipeline test covers the real models.
"""

from __future__ import annotations

import json
import os
import subprocess
import uuid
from decimal import Decimal
from pathlib import Path

import psycopg
import pyarrow as pa
import pyarrow.dataset as ds
import pyarrow.parquet as pq
import pytest
from export_gold_data import create_gold

from spark_loaders.errors import CondoError
from spark_loaders.export import ExportOptions, export_gold
from spark_loaders.export.models import MODELS, select_models
from spark_loaders.export.read_gold import PgSnapshot, ReadPlan, read_postgres

PROJECT_ROOT = Path(__file__).resolve().parents[2]
VENV_BIN = PROJECT_ROOT / ".venv" / "bin"
DAILY = "transacoes_diarias_por_tipo_imovel"

EXPECTED_TYPES = {
    "transacoes_por_condominio": {
        "condominio_id": pa.int32(),
        "nome_condominio": pa.string(),
        "qtd_transacoes": pa.int64(),
        "valor_total": pa.decimal128(20, 2),
    },
    "transacoes_por_morador": {
        "morador_id": pa.int32(),
        "nome_morador": pa.string(),
        "condominio_id": pa.int32(),
        "qtd_transacoes": pa.int64(),
        "valor_total": pa.decimal128(20, 2),
    },
    DAILY: {
        "data_transacao": pa.date32(),
        "tipo_imovel": pa.string(),
        "qtd_transacoes": pa.int64(),
        "valor_total": pa.decimal128(20, 2),
        "valor_medio": pa.decimal128(15, 2),
    },
}


@pytest.fixture
def gold_db(fresh_db):
    with psycopg.connect(**fresh_db.psycopg_kwargs()) as conn:
        create_gold(conn)
    return fresh_db


def source_rows(info, model: str) -> list[tuple]:
    columns = ", ".join(EXPECTED_TYPES[model])
    with psycopg.connect(**info.psycopg_kwargs()) as conn:
        return sorted(conn.execute(f"select {columns} from gold.{model}").fetchall())


def parquet_rows(path: Path, model: str) -> list[tuple]:
    """The dataset as plain tuples, read by pyarrow alone (hive partitions discovered)."""
    table = pq.read_table(path).select(list(EXPECTED_TYPES[model]))
    return sorted(tuple(row.values()) for row in table.to_pylist())


def file_types(path: Path) -> dict[str, pa.DataType]:
    """Column types as stored in the Parquet files themselves (not the partition column)."""
    dataset = ds.dataset(path, format="parquet", partitioning="hive")
    return {f.name: f.type for f in dataset.schema if f.name in EXPECTED_TYPES[path.name]}


def entries(out: Path) -> list[str]:
    return sorted(p.name for p in out.iterdir())


def test_export_writes_typed_partitioned_datasets_equal_to_gold(
    gold_db, spark, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # dbt metadata for one model only: the manifest must carry it there and nowhere else
    dbt_target = tmp_path / "dbt-target"
    dbt_target.mkdir()
    (dbt_target / "run_results.json").write_text(
        json.dumps(
            {
                "metadata": {"invocation_id": "inv-42", "generated_at": "2024-04-01T00:00:00Z"},
                "results": [{"unique_id": f"model.condomanage.{DAILY}", "status": "success"}],
            }
        )
    )
    monkeypatch.setenv("DBT_TARGET_PATH", str(dbt_target))
    out = tmp_path / "lake"
    # tiny read partitions so even these small tables take the parallel JDBC path
    results = export_gold(spark, out=out, options=ExportOptions(rows_per_read_partition=2))

    assert [r.model for r in results] == [m.name for m in MODELS]
    assert all(r.read_partitions > 1 for r in results)
    assert entries(out) == sorted([".condo-export.lock", *(m.name for m in MODELS)])
    for r in results:
        path = out / r.model
        assert file_types(path) == EXPECTED_TYPES[r.model]
        assert parquet_rows(path, r.model) == source_rows(gold_db, r.model)
        # no Hadoop side files, no temporary directories
        names = [p.name for p in path.rglob("*")]
        assert not [n for n in names if n.endswith(".crc") or n == "_SUCCESS" or "tmp" in n]

    # money survives to the cent, even at the 18 integer digits a double cannot hold
    morador = pq.read_table(out / "transacoes_por_morador").to_pylist()
    assert {r["morador_id"]: r["valor_total"] for r in morador}[3] == Decimal(
        "999999999999999999.99"
    )
    # zero-filled row and a name with a comma come through as they are
    condo = {
        r["condominio_id"]: r for r in pq.read_table(out / "transacoes_por_condominio").to_pylist()
    }
    assert condo[4]["qtd_transacoes"] == 0 and condo[4]["valor_total"] == Decimal("0.00")
    assert condo[1]["nome_condominio"] == "Residencial Jardim, Bloco A"

    # daily model: one hive directory per month, one file each, rows in the right month
    daily = out / DAILY
    months = sorted(p.name for p in daily.iterdir() if p.is_dir())
    assert months == ["mes=2024-01", "mes=2024-02", "mes=2024-03"]
    for month in months:
        files = list((daily / month).iterdir())
        assert len(files) == 1 and files[0].name.endswith(".zstd.parquet")
        for row in pq.read_table(files[0]).to_pylist():
            assert row["data_transacao"].strftime("%Y-%m") == month.removeprefix("mes=")
    # small models: no partition directories; read in ranges of their id, they are written
    # one file per range without a shuffle, so the files in order hold the ids in order
    for r in results[:2]:
        files = sorted(p for p in (out / r.model).iterdir() if p.name != "_manifest.json")
        assert len(files) == r.files == r.read_partitions
        assert all(p.is_file() and p.suffix == ".parquet" for p in files)
        key = "condominio_id" if r.model == "transacoes_por_condominio" else "morador_id"
        ids = [row[key] for f in files for row in pq.read_table(f).to_pylist()]
        assert ids == sorted(ids)

    # manifest: counts, schema, source, files; dbt id only where dbt built the model
    manifest = json.loads((daily / "_manifest.json").read_text())
    assert manifest["row_count"] == 6
    assert manifest["source"]["relation"] == f"gold.{DAILY}"
    assert manifest["source"]["consistent_snapshot"] is True
    assert manifest["dbt"]["invocation_id"] == "inv-42"
    assert manifest["partitioning"]["columns"][0]["name"] == "mes"
    assert [(c["name"], c["type"]) for c in manifest["columns"]] == [
        ("data_transacao", "date"),
        ("tipo_imovel", "string"),
        ("qtd_transacoes", "bigint"),
        ("valor_total", "decimal(20,2)"),
        ("valor_medio", "decimal(15,2)"),
    ]
    listed = {f["path"]: f["rows"] for f in manifest["files"]}
    assert listed == {
        p.relative_to(daily).as_posix(): pq.read_metadata(p).num_rows
        for p in daily.rglob("*.parquet")
    }
    assert sum(listed.values()) == 6 and manifest["compression"] == "zstd"
    other = json.loads((out / "transacoes_por_condominio" / "_manifest.json").read_text())
    assert other["dbt"] is None and other["partitioning"] is None and other["row_count"] == 4

    # Spark, knowing nothing of the project, reads the same rows and ignores the manifest
    back = spark.read.parquet(str(daily))
    assert back.count() == 6
    assert dict(back.dtypes)["valor_total"] == "decimal(20,2)"


def test_reexport_replaces_the_dataset_and_leaves_nothing_behind(
    gold_db, spark, tmp_path: Path
) -> None:
    out = tmp_path / "lake"
    export_gold(spark, out=out, models=[DAILY])
    before = json.loads((out / DAILY / "_manifest.json").read_text())
    with psycopg.connect(**gold_db.psycopg_kwargs()) as conn:
        conn.execute(f"insert into gold.{DAILY} values ('2024-04-01', 'Casa', 1, 10.10, 10.10)")
    export_gold(spark, out=out, models=[DAILY])
    after = json.loads((out / DAILY / "_manifest.json").read_text())

    assert entries(out) == [".condo-export.lock", DAILY]
    assert after["row_count"] == before["row_count"] + 1
    assert parquet_rows(out / DAILY, DAILY) == source_rows(gold_db, DAILY)
    assert "mes=2024-04" in entries(out / DAILY)
    # every file of the old version is gone: nothing of two versions is ever mixed
    old_files = {f["path"] for f in before["files"]}
    assert not old_files & {f["path"] for f in after["files"]}


def test_partitions_of_one_read_share_one_snapshot(gold_db, spark) -> None:
    """Rows committed after the export's snapshot are invisible to every JDBC partition."""
    model = select_models([DAILY])[0]
    with PgSnapshot(gold_db, "gold") as snap:
        rows_at_start = snap.stats(model).rows
        with psycopg.connect(**gold_db.psycopg_kwargs()) as other:
            other.execute(f"delete from gold.{DAILY} where data_transacao < '2024-02-01'")
            other.execute(f"insert into gold.{DAILY} values ('2024-03-20', 'Casa', 1, 1.00, 1.00)")
        plan = ReadPlan(
            partitions=3, column="data_transacao", lower="2024-01-30", upper="2024-03-15"
        )
        df = read_postgres(spark, model, snap, plan)
        assert df.rdd.getNumPartitions() == 3
        assert df.count() == rows_at_start == 6
    assert len(source_rows(gold_db, DAILY)) == 4


def test_a_table_off_contract_is_refused_and_nothing_is_written(
    fresh_db, spark, tmp_path: Path
) -> None:
    with psycopg.connect(**fresh_db.psycopg_kwargs()) as conn:
        conn.execute(
            "create schema gold; create table gold.transacoes_por_condominio ("
            "condominio_id integer, nome_condominio text, qtd_transacoes bigint, "
            "valor_total double precision)"
        )
    out = tmp_path / "lake"
    with pytest.raises(CondoError, match=r"valor_total is double, expected decimal\(20,2\)"):
        export_gold(spark, out=out, models=["transacoes_por_condominio"])
    with pytest.raises(CondoError, match=r"gold\.transacoes_por_morador does not exist"):
        export_gold(spark, out=out, models=["transacoes_por_morador"])
    assert entries(out) == [".condo-export.lock"]


def test_empty_gold_tables_export_their_schema(fresh_db, spark, tmp_path: Path) -> None:
    from export_gold_data import DDL

    with psycopg.connect(**fresh_db.psycopg_kwargs()) as conn:
        conn.execute(DDL)
    out = tmp_path / "lake"
    results = export_gold(spark, out=out)
    assert [r.rows for r in results] == [0, 0, 0]
    for m in MODELS:
        table = pq.read_table(out / m.name)
        assert table.num_rows == 0
        assert file_types(out / m.name) == EXPECTED_TYPES[m.name]
        assert json.loads((out / m.name / "_manifest.json").read_text())["row_count"] == 0


def test_spark_target_exports_catalog_tables(spark, tmp_path: Path) -> None:
    from pyspark.sql import types as T

    schema_name = f"gold_export_test_{uuid.uuid4().hex[:8]}"
    spark.sql(f"create database {schema_name}")
    try:
        daily_schema = T.StructType(
            [
                T.StructField("data_transacao", T.DateType()),
                T.StructField("tipo_imovel", T.StringType()),
                T.StructField("qtd_transacoes", T.LongType()),
                T.StructField("valor_total", T.DecimalType(20, 2)),
                T.StructField("valor_medio", T.DecimalType(15, 2)),
            ]
        )
        from datetime import date

        rows = [
            (date(2023, 12, 31), "Casa", 2, Decimal("100.10"), Decimal("50.05")),
            (date(2024, 1, 1), "Apartamento", 1, Decimal("0.01"), Decimal("0.01")),
        ]
        spark.createDataFrame(rows, daily_schema).write.saveAsTable(f"{schema_name}.{DAILY}")
        out = tmp_path / "lake"
        (result,) = export_gold(
            spark,
            out=out,
            models=[DAILY],
            options=ExportOptions(target="spark", gold_schema=schema_name),
        )
        assert result.rows == 2
        assert entries(out / DAILY) == ["_manifest.json", "mes=2023-12", "mes=2024-01"]
        assert file_types(out / DAILY) == EXPECTED_TYPES[DAILY]
        assert parquet_rows(out / DAILY, DAILY) == sorted(rows)
        manifest = json.loads((out / DAILY / "_manifest.json").read_text())
        assert manifest["source"]["target"] == "spark"
        assert manifest["source"]["relation"] == f"{schema_name}.{DAILY}"
    finally:
        spark.sql(f"drop database if exists {schema_name} cascade")


def _condo_env(**extra: str) -> dict[str, str]:
    env = {**os.environ, **extra}
    env["PATH"] = f"{VENV_BIN}{os.pathsep}{env.get('PATH', '')}"
    return env


def test_missing_jdbc_driver_is_one_clear_line(gold_db, tmp_path: Path) -> None:
    proc = subprocess.run(
        [str(VENV_BIN / "condo"), "export", "--out", str(tmp_path / "lake")],
        env=_condo_env(CONDO_JDBC_JAR=str(tmp_path / "nowhere" / "postgresql.jar")),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert lines == [
        f"condo: error: CONDO_JDBC_JAR points at {tmp_path}/nowhere/postgresql.jar, which does not exist"
    ]
    assert not (tmp_path / "lake").exists()


@pytest.mark.spark
def test_without_any_jar_spark_fetches_the_driver_or_says_clearly_why_not(
    gold_db, tmp_path: Path
) -> None:
    """No Debian jar, no CONDO_JDBC_JAR, empty Maven/Ivy caches: the export asks Spark for
    the usual coordinates. Online it downloads the driver and exports; offline it must end
    with the one-line driver message, not a Java stack trace."""
    home = tmp_path / "home"
    home.mkdir()
    code = (
        "import sys; from pathlib import Path; from spark_loaders import spark_session, cli; "
        "spark_session.DEBIAN_JDBC_JAR = Path('/nonexistent/postgresql.jar'); "
        "sys.exit(cli.main(['export', '--out', sys.argv[1], '--models', sys.argv[2]]))"
    )
    env = _condo_env(HOME=str(home))
    for key in ("CONDO_JDBC_JAR", "CONDO_SPARK_PACKAGES"):
        env.pop(key, None)
    proc = subprocess.run(
        [str(VENV_BIN / "python"), "-c", code, str(tmp_path / "lake"), DAILY],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        cwd=PROJECT_ROOT,
    )
    if proc.returncode == 0:  # Maven Central reachable
        assert parquet_rows(tmp_path / "lake" / DAILY, DAILY) == source_rows(gold_db, DAILY)
        assert list(home.glob(".ivy2*/jars/org.postgresql_postgresql-*.jar"))
    else:
        assert proc.returncode == 2, proc.stderr[-2000:]
        last = proc.stderr.strip().splitlines()[-1]
        assert last.startswith("condo: error: the PostgreSQL JDBC driver was not found")
        assert "Traceback" not in proc.stderr
        assert not (tmp_path / "lake" / DAILY).exists()


def test_killed_export_keeps_the_previous_version_and_the_next_run_recovers(
    gold_db, spark, tmp_path: Path
) -> None:
    out = tmp_path / "lake"
    export_gold(spark, out=out)
    before = {m.name: (out / m.name / "_manifest.json").read_text() for m in MODELS}
    old_daily = parquet_rows(out / DAILY, DAILY)
    with psycopg.connect(**gold_db.psycopg_kwargs()) as conn:
        conn.execute(f"update gold.{DAILY} set valor_total = valor_total + 1")

    # the spark-submit entry, killed with SIGKILL once every new version is fully written
    proc = subprocess.run(
        [str(VENV_BIN / "spark-submit"), "spark_loaders/export_gold.py", "--out", str(out)],
        env=_condo_env(CONDO_EXPORT_FAULT="after_write"),
        capture_output=True,
        text=True,
        timeout=300,
        cwd=PROJECT_ROOT,
    )
    # SIGKILL: -9 when we are its parent; spark-submit reports its Python child as 137
    assert proc.returncode in (-9, 137), proc.stderr[-2000:]
    stale = [n for n in entries(out) if ".tmp-" in n]
    assert len(stale) == len(MODELS)  # the kill really came after the writes
    for m in MODELS:  # previous versions untouched and complete
        assert (out / m.name / "_manifest.json").read_text() == before[m.name]
        manifest = json.loads(before[m.name])
        assert pq.read_table(out / m.name).num_rows == manifest["row_count"]
    assert parquet_rows(out / DAILY, DAILY) == old_daily

    # the next run cleans up and publishes the new data
    export_gold(spark, out=out)
    assert entries(out) == sorted([".condo-export.lock", *(m.name for m in MODELS)])
    assert parquet_rows(out / DAILY, DAILY) == source_rows(gold_db, DAILY) != old_daily
