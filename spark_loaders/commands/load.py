"""``condo load [PATH ...]``: validated, idempotent, atomic CSV loads into bronze.

The options are defined once in :data:`spark_loaders.jobs.LOAD`, shared with
``spark-submit spark_loaders/load_files.py``.
"""

from __future__ import annotations

import argparse

from spark_loaders import jobs
from spark_loaders.domain import SPARK_TARGET


def register(sub: argparse._SubParsersAction) -> None:
    jobs.register(sub, jobs.LOAD)


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from spark_loaders.fsio import as_path
    from spark_loaders.ingest.cli_run import run_load
    from spark_loaders.java_check import check_java
    from spark_loaders.spark_master import apply_master
    from spark_loaders.spark_session import get_spark, lazy_spark

    apply_master(args)
    hive = args.target == SPARK_TARGET
    if hive or not all(isinstance(as_path(p), Path) for p in args.paths):
        spark = get_spark("condo-load", hive=hive)  # Spark tables or Hadoop file systems
    else:
        # Started only if a file needs it: large quote-free files load without Spark locally.
        # Java is checked now all the same, so that a machine without it fails before any
        # work rather than at the first file that needs Spark.
        check_java()
        spark = lazy_spark("condo-load")
    return run_load(spark, args.paths, args)
