"""spark-submit entry for streaming ingestion.

    spark-submit --master <url> --jars /usr/share/java/postgresql.jar \
        spark_loaders/stream_files.py [--landing DIR] [--trigger S | --available-now] ...

Takes the same options as ``condo stream``; the master and resources come from spark-submit.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

if __package__ in (None, ""):
    # Run as a script (spark-submit spark_loaders/stream_files.py): make the project importable.
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from spark_loaders.errors import CondoError
from spark_loaders.streaming.run import add_arguments, main


def cli(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="stream_files.py", description="Stream CSV files from a landing directory into bronze."
    )
    add_arguments(parser)
    args = parser.parse_args(argv)
    try:
        return main(args)
    except CondoError as exc:
        print(f"condo stream: error: {exc}", file=sys.stderr)
        return exc.exit_code


if __name__ == "__main__":
    sys.exit(cli())
