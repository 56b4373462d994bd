"""spark-submit entry point of the batch loader:

    spark-submit [--master URL] spark_loaders/load_files.py [PATH ...] [--force]
        [--max-reject-rate R] [--target postgres|spark]

Same options and exit code as ``condo load``. See docs/ingestion.md for cluster use.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

if __package__ in (None, ""):
    # Run as a script by spark-submit: make the project importable.
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from spark_loaders.errors import CondoError
from spark_loaders.ingest.cli_run import add_arguments, run_load


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="load_files.py", description="Load CSV extracts into bronze (see `condo load`)."
    )
    add_arguments(parser)
    args = parser.parse_args(argv)
    try:
        from spark_loaders.spark_master import apply_master
        from spark_loaders.spark_session import get_spark

        apply_master(args)
        spark = get_spark("condo-load", hive=args.target == "spark")
        return run_load(spark, args.paths, args)
    except CondoError as exc:
        print(f"load_files.py: error: {exc}", file=sys.stderr)
        return exc.exit_code


if __name__ == "__main__":
    sys.exit(main())
