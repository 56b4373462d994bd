"""spark-submit entry point of streaming ingestion (``condo stream``):

    spark-submit --master <url> --jars /usr/share/java/postgresql.jar \
        spark_loaders/stream_files.py [--landing DIR] [--trigger S | --available-now] ...

Same options and exit code as ``condo stream``: both come from
:data:`spark_loaders.jobs.STREAM`. The master and resources come from spark-submit.
"""

from __future__ import annotations

import sys
from pathlib import Path

if __package__ in (None, ""):
    # Run as a script (spark-submit, python path/to/stream_files.py): make the project importable
    # without installing it.
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from spark_loaders import jobs


def main(argv: list[str] | None = None) -> int:
    return jobs.submit_main(jobs.STREAM, argv)


if __name__ == "__main__":
    sys.exit(main())
