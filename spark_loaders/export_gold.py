"""spark-submit entry point of the gold export (``condo export``):

    spark-submit spark_loaders/export_gold.py [--out DIR] [--models M ...] [--target T]
        [--master URL]

Same options and exit code as ``condo export``: both come from
:data:`spark_loaders.jobs.EXPORT`. The PostgreSQL JDBC driver is taken from the Debian jar
or ``CONDO_JDBC_JAR`` when the script starts the session itself; when spark-submit starts
it, pass the jar too (``--jars /usr/share/java/postgresql.jar``) if the check says it is
missing.
"""

from __future__ import annotations

import sys
from pathlib import Path

if __package__ in (None, ""):
    # Run as a script (spark-submit, python path/to/export_gold.py): make the project importable
    # without installing it.
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from spark_loaders import jobs


def main(argv: list[str] | None = None) -> int:
    return jobs.submit_main(jobs.EXPORT, argv)


if __name__ == "__main__":
    sys.exit(main())
