"""``condo export``: write the gold models as Parquet datasets under ``data/lake/gold/``.

The options are defined once in :data:`spark_loaders.jobs.EXPORT`, shared with
``spark-submit spark_loaders/export_gold.py``.
"""

from __future__ import annotations

import argparse
import time

from spark_loaders import jobs
from spark_loaders.domain import POSTGRES_TARGET, SPARK_TARGET
from spark_loaders.spark_master import apply_master


def register(sub: argparse._SubParsersAction) -> None:
    jobs.register(sub, jobs.EXPORT)


def _size(n: int) -> str:
    size = float(n)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if size < 1024 or unit == "GiB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    raise AssertionError


def run(args: argparse.Namespace) -> int:
    from spark_loaders.export import ExportOptions, export_gold
    from spark_loaders.logs import setup_logging
    from spark_loaders.spark_session import get_spark, require_jdbc

    setup_logging()  # export_gold.py runs this without the CLI
    apply_master(args)
    started = time.perf_counter()
    if args.target == POSTGRES_TARGET:
        require_jdbc()
    spark = get_spark("condo-export", hive=args.target == SPARK_TARGET)
    results = export_gold(
        spark, out=args.out, models=args.models, options=ExportOptions(target=args.target)
    )
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
