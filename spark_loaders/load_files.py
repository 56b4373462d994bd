"""spark-submit entry point of the batch loader (``condo load``):

    spark-submit [--master URL] spark_loaders/load_files.py [PATH ...] [--force]
        [--max-reject-rate R] [--target postgres|spark] [--quiet]

Same options and exit code as ``condo load``: both come from
:data:`spark_loaders.jobs.LOAD`. See docs/ingestion.md for cluster use.
"""

from __future__ import annotations

import sys
from pathlib import Path

if __package__ in (None, ""):
    # Run as a script (spark-submit, python path/to/load_files.py): make the project importable
    # without installing it.
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from spark_loaders import jobs


def main(argv: list[str] | None = None) -> int:
    return jobs.submit_main(jobs.LOAD, argv)


if __name__ == "__main__":
    sys.exit(main())
