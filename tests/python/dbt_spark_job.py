"""Subprocess entry for the spark-target tests: one JVM creates bronze from the sample
rows, then runs dbt (dbt-spark's ``session`` method picks up this process's session).

Usage: python dbt_spark_job.py WORKDIR DBT_ARGS...   (CONDO_SPARK_DIR must be set)
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
    for statement in bronze.spark_ddl():
        spark.sql(statement)
    load = bronze.Load(1, LOADED_AT, bronze.sample_rows(PROJECT_ROOT / "data" / "sample"))
    for entity in bronze.ENTITIES:
        table = spark.table(f"bronze.{entity}")
        rows = bronze.lineage_rows(load, entity)
        spark.createDataFrame(rows, table.schema).write.insertInto(f"bronze.{entity}")


def main() -> int:
    workdir, dbt_args = Path(sys.argv[1]), sys.argv[2:]
    if "CONDO_SPARK_DIR" not in os.environ:
        raise SystemExit("CONDO_SPARK_DIR must name this run's own Spark directory")
    from dbt.cli.main import dbtRunner

    from spark_loaders.dbt_env import dbt_environment
    from spark_loaders.spark_session import get_spark

    os.environ.update(dbt_environment("spark"))
    spark = get_spark("condo-dbt-spark-test", hive=True)
    create_bronze(spark)
    result = dbtRunner().invoke(
        [
            *dbt_args,
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
    return 0 if result.success else 1


if __name__ == "__main__":
    sys.exit(main())
