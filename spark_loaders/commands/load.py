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
    from spark_loaders.ingest.cli_run import run_load
    from spark_loaders.spark_master import apply_master
    from spark_loaders.spark_session import get_spark

    apply_master(args)
    spark = get_spark("condo-load", hive=args.target == SPARK_TARGET)
    return run_load(spark, args.paths, args)
