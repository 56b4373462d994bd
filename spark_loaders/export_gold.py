"""spark-submit entry for the gold export.

    spark-submit spark_loaders/export_gold.py [--out DIR] [--models M ...] [--target T]

Same options as ``condo export``. The PostgreSQL JDBC driver is taken from the Debian jar
or ``CONDO_JDBC_JAR`` when the script starts the session itself; when spark-submit starts
it, pass the jar too (``--jars /usr/share/java/postgresql.jar``) if the check says it is
missing.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

if __package__ in (None, ""):
    # Run as a script (spark-submit, python path/to/export_gold.py): make the project
    # importable without installing it.
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from spark_loaders.commands.export import add_arguments
from spark_loaders.errors import CondoError


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="export_gold.py", description="Export the gold models to Parquet datasets."
    )
    add_arguments(parser)
    args = parser.parse_args(argv)
    from spark_loaders.commands.export import run

    try:
        return run(args)
    except CondoError as exc:
        print(f"export_gold: error: {exc}", file=sys.stderr)
        return exc.exit_code


if __name__ == "__main__":
    sys.exit(main())
