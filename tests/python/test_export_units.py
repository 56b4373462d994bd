"""Unit tests of the export's pure parts: read planning, the contract check, the
directory swap and its crash recovery, the dbt run lookup. No Spark session needed
(Spark's type classes are plain Python)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import date
from pathlib import Path

import pytest
from pyspark.sql import types as T

from spark_loaders import fault_injection
from spark_loaders.errors import CondoError
from spark_loaders.export import manifest, swap
from spark_loaders.export.api import ExportOptions
from spark_loaders.export.models import MODELS, select_models
from spark_loaders.export.read_gold import TableStats, plan_read
from spark_loaders.export.schema import contract_problems, lossless, spark_type
from spark_loaders.export.write_dataset import expected_arrow_schema, file_count

PROJECT_ROOT = Path(__file__).resolve().parents[2]


def test_models_match_the_documented_contract() -> None:
    """Every model and column type in models.py appears verbatim in docs/contracts.md."""
    contract = (PROJECT_ROOT / "docs" / "contracts.md").read_text(encoding="utf-8")
    for model in MODELS:
        line = next(ln for ln in contract.splitlines() if f"`gold.{model.name}`" in ln)
        for column in model.columns:
            assert f"`{column.name} {column.pg_type}`" in line, (model.name, column.name)


def test_small_tables_are_read_through_one_connection() -> None:
    plan = plan_read(TableStats(rows=1000, low=1, high=1000), "id", max_partitions=8)
    assert plan.partitions == 1 and plan.column is None


def test_large_tables_are_split_between_their_bounds() -> None:
    plan = plan_read(
        TableStats(rows=2_000_000, low=10, high=2_000_009),
        "morador_id",
        max_partitions=4,
        rows_per_partition=250_000,
    )
    assert (plan.partitions, plan.column, plan.lower, plan.upper) == (
        4,
        "morador_id",
        "10",
        "2000009",
    )


def test_date_split_never_asks_for_more_partitions_than_days() -> None:
    stats = TableStats(rows=3_000_000, low=date(2024, 1, 1), high=date(2024, 1, 3))
    plan = plan_read(stats, "data_transacao", max_partitions=16, rows_per_partition=1000)
    assert plan.partitions == 3
    assert (plan.lower, plan.upper) == ("2024-01-01", "2024-01-03")


def test_empty_table_reads_in_one_partition() -> None:
    assert (
        plan_read(TableStats(rows=0, low=None, high=None), "id", max_partitions=8).partitions == 1
    )


@pytest.mark.parametrize(
    ("source", "target", "ok"),
    [
        (T.DecimalType(20, 2), "decimal(20,2)", True),
        (T.DecimalType(15, 2), "decimal(20,2)", True),
        (T.DecimalType(38, 18), "decimal(20,2)", False),  # unconstrained numeric: would round
        (T.DecimalType(25, 2), "decimal(20,2)", False),  # could overflow
        (T.DoubleType(), "decimal(20,2)", False),
        (T.IntegerType(), "bigint", True),
        (T.LongType(), "int", False),
        (T.DecimalType(20, 0), "bigint", False),
        (T.VarcharType(255), "string", True),
        (T.TimestampType(), "date", False),
        (T.DateType(), "date", True),
    ],
)
def test_only_lossless_casts_are_accepted(source: T.DataType, target: str, ok: bool) -> None:
    assert lossless(source, spark_type(target)) is ok


def test_contract_problems_name_every_offending_column() -> None:
    model = select_models(["transacoes_por_condominio"])[0]
    source = T.StructType(
        [
            T.StructField("condominio_id", T.IntegerType()),
            T.StructField("qtd_transacoes", T.LongType()),
            T.StructField("valor_total", T.DoubleType()),
            T.StructField("extra", T.StringType()),
        ]
    )
    assert contract_problems(model, source) == [
        "column nome_condominio is missing",
        "valor_total is double, expected decimal(20,2)",
    ]


def test_unknown_model_is_a_user_error() -> None:
    with pytest.raises(CondoError, match="unknown gold model"):
        select_models(["transacoes_por_planeta"])


def test_money_is_decimal_and_counts_int64_in_the_expected_arrow_schema() -> None:
    import pyarrow as pa

    daily = select_models(["transacoes_diarias_por_tipo_imovel"])[0]
    schema = expected_arrow_schema(daily)
    assert schema.field("valor_total").type == pa.decimal128(20, 2)
    assert schema.field("valor_medio").type == pa.decimal128(15, 2)
    assert schema.field("qtd_transacoes").type == pa.int64()
    assert schema.field("data_transacao").type == pa.date32()


def test_file_count_grows_with_rows_and_follows_the_read_partitions() -> None:
    assert [file_count(n, 100) for n in (0, 1, 100, 101, 1000)] == [1, 1, 1, 2, 10]
    assert file_count(1000, 100, read_partitions=4) == 10
    assert file_count(300, 100, read_partitions=4) == 4


def _dataset(path: Path, marker: str) -> Path:
    path.mkdir()
    (path / "part-0.parquet").write_text(marker)
    (path / swap.MANIFEST).write_text(json.dumps({"marker": marker}))
    return path


def test_exchange_swaps_two_directories(tmp_path: Path) -> None:
    a, b = _dataset(tmp_path / "a", "A"), _dataset(tmp_path / "b", "B")
    if not swap.exchange(a, b):
        pytest.skip("this platform or file system has no atomic exchange")
    assert (a / "part-0.parquet").read_text() == "B"
    assert (b / "part-0.parquet").read_text() == "A"


@pytest.mark.parametrize("mode", ["exchange", "rename"])
def test_swap_in_replaces_and_returns_the_previous_version(
    tmp_path: Path, mode: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(fault_injection.EXPORT_SWAP_ENV, mode)
    target = _dataset(tmp_path / "m", "old")
    new = _dataset(swap.temp_path(tmp_path, "m", "r1"), "new")
    previous = swap.swap_in(new, target, "r1")
    assert (target / "part-0.parquet").read_text() == "new"
    assert previous is not None and (previous / "part-0.parquet").read_text() == "old"


def test_swap_in_refuses_a_directory_export_did_not_write(tmp_path: Path) -> None:
    target = tmp_path / "m"
    target.mkdir()
    (target / "precious.csv").write_text("keep me")
    new = _dataset(swap.temp_path(tmp_path, "m", "r1"), "new")
    with pytest.raises(CondoError, match="refusing to replace"):
        swap.swap_in(new, target, "r1")
    assert (target / "precious.csv").read_text() == "keep me"


def test_kill_between_the_two_renames_is_repaired_by_recover(tmp_path: Path) -> None:
    """A real SIGKILL at the one point where the fallback swap leaves no live directory."""
    target = _dataset(tmp_path / "m", "old")
    new = _dataset(swap.temp_path(tmp_path, "m", "r1"), "new")
    code = (
        "import sys; from pathlib import Path; from spark_loaders.export import swap; "
        "swap.swap_in(Path(sys.argv[1]), Path(sys.argv[2]), 'r1')"
    )
    env = {
        **os.environ,
        fault_injection.EXPORT_ENV: "mid_swap",
        fault_injection.EXPORT_SWAP_ENV: "rename",
    }
    proc = subprocess.run([sys.executable, "-c", code, str(new), str(target)], env=env)
    assert proc.returncode == -9
    assert not target.exists()
    actions = swap.recover(tmp_path)
    assert (target / "part-0.parquet").read_text() == "old"
    assert "restored m from an interrupted swap" in actions
    assert "removed stale .m.tmp-r1" in actions
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m"]


def test_recover_deletes_leftovers_when_the_live_version_exists(tmp_path: Path) -> None:
    _dataset(tmp_path / "m", "live")
    _dataset(swap.old_path(tmp_path, "m", "r0"), "older")
    _dataset(swap.temp_path(tmp_path, "m", "r0"), "half")
    swap.recover(tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m"]
    assert (tmp_path / "m" / "part-0.parquet").read_text() == "live"


def test_export_lock_is_exclusive(tmp_path: Path) -> None:
    code = (
        "import sys; from pathlib import Path; from spark_loaders.export import swap\n"
        "with swap.export_lock(Path(sys.argv[1])): pass"
    )
    with swap.export_lock(tmp_path):
        proc = subprocess.run(
            [sys.executable, "-c", code, str(tmp_path)], capture_output=True, text=True
        )
    assert proc.returncode != 0 and "another `condo export` is writing" in proc.stderr
    with swap.export_lock(tmp_path):  # released again
        pass


def test_dbt_invocation_is_taken_only_from_a_run_that_built_the_model(tmp_path: Path) -> None:
    path = tmp_path / "run_results.json"
    path.write_text(
        json.dumps(
            {
                "metadata": {"invocation_id": "abc-123", "generated_at": "2024-05-01T10:00:00Z"},
                "args": {"target": "postgres"},
                "results": [
                    {"unique_id": "model.condomanage.transacoes_por_morador", "status": "success"},
                    {"unique_id": "test.condomanage.not_null_x", "status": "pass"},
                ],
            }
        )
    )
    run = manifest.last_dbt_run("transacoes_por_morador", path)
    assert run is not None
    assert (run.invocation_id, run.status, run.target) == ("abc-123", "success", "postgres")
    assert manifest.last_dbt_run("transacoes_por_condominio", path) is None
    assert manifest.last_dbt_run("transacoes_por_morador", tmp_path / "missing.json") is None


def _jar(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"PK")
    return path


def test_jdbc_jar_resolution_order(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from spark_loaders import spark_session

    home = tmp_path / "home"
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.delenv("CONDO_JDBC_JAR", raising=False)
    monkeypatch.delenv("CONDO_SPARK_PACKAGES", raising=False)
    monkeypatch.delenv("PYSPARK_GATEWAY_PORT", raising=False)
    debian = _jar(tmp_path / "usr" / "postgresql.jar")
    monkeypatch.setattr(spark_session, "DEBIAN_JDBC_JAR", debian)
    m2 = home / ".m2" / "repository" / "org" / "postgresql" / "postgresql"
    _jar(m2 / "42.2.9" / "postgresql-42.2.9.jar")
    newest = _jar(m2 / "42.7.13" / "postgresql-42.7.13.jar")
    _jar(home / ".ivy2.5.2" / "jars" / "org.postgresql_postgresql-42.7.4.jar")

    assert spark_session.jdbc_jar() == str(debian)  # Debian's package first
    configured = _jar(tmp_path / "mine" / "postgresql-42.7.5.jar")
    monkeypatch.setenv("CONDO_JDBC_JAR", str(configured))
    assert spark_session.jdbc_jar() == str(configured)  # but an explicit setting wins
    monkeypatch.delenv("CONDO_JDBC_JAR")
    debian.unlink()
    assert spark_session.jdbc_jar() == str(newest)  # then the newest cached download

    for child in sorted(home.rglob("*"), reverse=True):
        child.unlink() if child.is_file() else child.rmdir()
    assert spark_session.jdbc_jar() is None
    # no jar anywhere: Spark is asked to fetch the usual coordinates
    assert spark_session.jdbc_packages() == spark_session.JDBC_PACKAGE
    spark_session.require_jdbc()
    monkeypatch.setenv("CONDO_SPARK_PACKAGES", "org.postgresql:postgresql:42.7.13")
    assert spark_session.jdbc_packages() == "org.postgresql:postgresql:42.7.13"
    monkeypatch.setenv("CONDO_SPARK_PACKAGES", "none")  # downloads turned off
    with pytest.raises(CondoError, match="PostgreSQL JDBC driver was not found"):
        spark_session.require_jdbc()


def test_export_options_refuse_an_unknown_target_or_compression() -> None:
    assert ExportOptions(target="spark", compression="snappy").target == "spark"
    with pytest.raises(CondoError, match="unknown target 'duckdb'"):
        ExportOptions(target="duckdb")
    with pytest.raises(CondoError, match="compression must be zstd or snappy, not 'gzip'"):
        ExportOptions(compression="gzip")
