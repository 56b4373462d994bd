"""Subprocess entry for the spark-target tests: one JVM creates bronze, then runs dbt
(dbt-spark's ``session`` method picks up this process's session).

Usage (CONDO_SPARK_DIR must be set):
    python dbt_spark_job.py WORKDIR DBT_ARGS...      data/sample through the loader, then dbt
    python dbt_spark_job.py WORKDIR --incremental     the late-data scenario; prints JSON
"""

from __future__ import annotations

import datetime as dt
import os
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import dbt_bronze as bronze  # noqa: E402

PROJECT_ROOT = HERE.parents[1]
LOADED_AT = dt.datetime(2025, 1, 1, 12, 0, tzinfo=dt.UTC)


def create_bronze(spark) -> None:
    """data/sample through the real loader's spark target (docs/contracts.md bronze)."""
    from spark_loaders.ingest.api import ingest_files

    report = ingest_files(spark, [PROJECT_ROOT / "data" / "sample"], target="spark", progress=False)
    failed = [f for f in report.files if f.status != "loaded"]
    if failed:
        raise SystemExit(f"the loader did not load the sample: {failed}")


def insert_load(spark, load: bronze.Load) -> None:
    for entity in bronze.ENTITIES:
        rows = bronze.lineage_rows(load, entity)
        if rows:
            schema = spark.table(f"bronze.{entity}").schema
            spark.createDataFrame(rows, schema).write.insertInto(f"bronze.{entity}")


SNAPSHOT_TABLES = (
    "silver.transacoes",
    "silver.imoveis",
    "silver.moradores",
    "gold.transacoes_por_condominio",
    "gold.transacoes_por_morador",
    "gold.transacoes_diarias_por_tipo_imovel",
)


def snapshot(spark) -> dict[str, list[str]]:
    return {
        table: sorted(repr(tuple(row)) for row in spark.table(table).collect())
        for table in SNAPSHOT_TABLES
    }


def incremental_scenario(spark, invoke) -> dict:
    """The postgres incremental test's loads, on Spark: incremental == full refresh."""
    import json

    from test_dbt_postgres import first_load, late_load

    for statement in bronze.spark_ddl():
        spark.sql(statement)
    insert_load(spark, first_load())
    ok = [
        invoke(["build", "--exclude-resource-type", "test", "--exclude-resource-type", "unit_test"])
    ]
    insert_load(spark, late_load())
    ok.append(invoke(["run"]))
    incremental = snapshot(spark)
    silver_ids = sorted(
        r[0] for r in spark.sql("select transacao_id from silver.transacoes").collect()
    )
    ok.append(invoke(["run", "--full-refresh"]))
    full = snapshot(spark)
    result = {
        "dbt_ok": all(ok),
        "identical": incremental == full,
        "silver_ids": silver_ids,
        "differences": [t for t in SNAPSHOT_TABLES if incremental[t] != full[t]],
    }
    print("RESULT " + json.dumps(result))
    return result


def main() -> int:
    workdir, dbt_args = Path(sys.argv[1]), sys.argv[2:]
    if "CONDO_SPARK_DIR" not in os.environ:
        raise SystemExit("CONDO_SPARK_DIR must name this run's own Spark directory")
    from dbt.cli.main import dbtRunner

    from spark_loaders.dbt_env import dbt_environment
    from spark_loaders.spark_session import get_spark

    os.environ.update(dbt_environment("spark"))
    spark = get_spark("condo-dbt-spark-test", hive=True)

    def invoke(args: list[str]) -> bool:
        result = dbtRunner().invoke(
            [
                *args,
                "--target",
                "spark",
                "--project-dir",
                str(PROJECT_ROOT),
                "--profiles-dir",
                str(PROJECT_ROOT / "profiles"),
                "--target-path",
                str(workdir / "target"),
                "--log-path",
                str(workdir / "logs"),
            ]
        )
        return result.success

    if dbt_args == ["--incremental"]:
        result = incremental_scenario(spark, invoke)
        return 0 if result["dbt_ok"] and result["identical"] else 1
    create_bronze(spark)
    return 0 if invoke(dbt_args) else 1


if __name__ == "__main__":
    sys.exit(main())
