"""--target spark: the same rules into Spark tables of the session's catalog, with the ledger
and high-water marks as Spark tables (no PostgreSQL involved)."""

from __future__ import annotations

from pathlib import Path

import pytest
from load_helpers import load, write

SAMPLE = Path(__file__).resolve().parents[2] / "data" / "sample"
TABLES = [
    "bronze.condominios",
    "bronze.imoveis",
    "bronze.moradores",
    "bronze.transacoes",
    "bronze.rejected_rows",
    "ops.loads",
    "ops.id_watermarks",
]


@pytest.fixture
def clean_catalog(spark):
    def drop() -> None:
        for table in TABLES:
            spark.sql(f"drop table if exists {table}")

    drop()
    yield spark
    drop()


def test_spark_target_sample_rerun_force_and_rejects(clean_catalog, tmp_path) -> None:
    spark = clean_catalog
    report = load(spark, SAMPLE / "condominios.csv", SAMPLE / "transacoes.csv", target="spark")
    assert report.ok
    counts = {f.entity: f.rows_loaded for f in report.files}
    assert counts == {"condominios": 3, "transacoes": 22}
    ids = [
        r[0] for r in spark.sql("select transacao_id from bronze.transacoes order by 1").collect()
    ]
    assert ids == list(range(1, 23))
    first = spark.sql("select endereco, _repaired from bronze.condominios where condominio_id = 1")
    assert [tuple(r) for r in first.collect()] == [("Rua das Palmeiras, 123, Centro", True)]
    types = dict(spark.table("bronze.transacoes").dtypes)
    assert types["valor_transacao"] == "decimal(15,2)"
    assert types["data_transacao"] == "date"

    again = load(spark, SAMPLE / "transacoes.csv", target="spark")
    assert [f.status for f in again.files] == ["skipped"]
    forced = load(spark, SAMPLE / "transacoes.csv", target="spark", force=True)
    assert forced.files[0].status == "loaded"
    assert spark.table("bronze.transacoes").count() == 22
    statuses = spark.sql(
        "select status, count(*) from ops.loads where entity = 'transacoes' group by 1"
    ).collect()
    assert dict((r[0], r[1]) for r in statuses) == {"replaced": 1, "loaded": 1, "skipped": 1}

    bad = write(tmp_path / "imoveis_bad.csv", "tipo,condominio_id,valor\nCasa,1,-5\nLoja,x,1.00\n")
    result = load(spark, bad, target="spark").files[0]
    assert (result.rows_read, result.rows_loaded, result.rows_rejected) == (2, 0, 2)
    rejects = spark.sql(
        "select source_line, reasons from bronze.rejected_rows where source_file = 'imoveis_bad.csv'"
        " order by 1"
    ).collect()
    assert [(r[0], list(r[1])) for r in rejects] == [
        (2, ["invalid_amount"]),
        (3, ["invalid_integer"]),
    ]
    marks = dict(spark.sql("select entity, high_water from ops.id_watermarks").collect())
    assert marks["imoveis"] == 2
    assert marks["transacoes"] == 22
