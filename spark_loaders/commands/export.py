"""``condo export``: write the gold models as Parquet datasets under ``data/lake/gold/``."""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from spark_loaders.domain import DEFAULT_TARGET, POSTGRES_TARGET, SPARK_TARGET, TARGETS
from spark_loaders.export.models import MODEL_NAMES
from spark_loaders.spark_master import add_master_argument, apply_master


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser(
        "export",
        help="export the gold models to Parquet (one dataset directory per model)",
        description=(
            "Read the gold models (PostgreSQL over JDBC, or Spark tables with --target spark) "
            "and publish each one atomically as <out>/<model>/ with a _manifest.json."
        ),
    )
    add_arguments(parser)
    parser.set_defaults(func=run)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--out",
        type=Path,
        default=None,
        metavar="DIR",
        help="output directory (default: data/lake/gold/ in the project)",
    )
    parser.add_argument(
        "--models",
        nargs="+",
        choices=MODEL_NAMES,
        metavar="MODEL",
        help=f"models to export (default: all of {', '.join(MODEL_NAMES)})",
    )
    parser.add_argument(
        "--target",
        choices=TARGETS,
        default=DEFAULT_TARGET,
        help="where gold lives: PostgreSQL (default) or the Spark catalog",
    )
    add_master_argument(parser)


def _size(n: int) -> str:
    size = float(n)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if size < 1024 or unit == "GiB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    raise AssertionError


def run(args: argparse.Namespace) -> int:
    from spark_loaders.export import export_gold
    from spark_loaders.logs import setup_logging
    from spark_loaders.spark_session import get_spark, require_jdbc

    setup_logging()  # export_gold.py runs this without the CLI
    apply_master(args)
    started = time.perf_counter()
    if args.target == POSTGRES_TARGET:
        require_jdbc()
    spark = get_spark("condo-export", hive=args.target == SPARK_TARGET)
    results = export_gold(spark, out=args.out, models=args.models, target=args.target)
    for r in results:
        print(
            f"{r.model:36} {r.rows:>10} rows  {r.files:>3} file(s)  {_size(r.bytes):>10}  "
            f"{r.seconds:6.1f}s  <- {r.source} ({r.read_partitions} read partition(s))"
        )
    if results:
        print(
            f"Parquet datasets in {results[0].path.parent} ({time.perf_counter() - started:.1f}s)"
        )
    return 0
