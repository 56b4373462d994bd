"""``condo load [PATH ...]``: validated, idempotent, atomic CSV loads into bronze."""

from __future__ import annotations

import argparse

from spark_loaders.domain import SPARK_TARGET
from spark_loaders.ingest.cli_run import add_arguments, run_load


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser(
        "load",
        help="load CSV extracts into bronze (validated, idempotent, atomic per file)",
        description="Load CSV extracts into bronze. Each file commits its rows, rejects and "
        "ledger entry in one transaction; files already loaded are skipped. Exit code 1 if "
        "a file is rejected whole, fails, or exceeds --max-reject-rate.",
    )
    add_arguments(parser)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from spark_loaders.spark_master import apply_master
    from spark_loaders.spark_session import get_spark

    apply_master(args)
    spark = get_spark("condo-load", hive=args.target == SPARK_TARGET)
    return run_load(spark, args.paths, args)
