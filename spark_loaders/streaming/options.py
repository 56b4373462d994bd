"""The command-line options of ``condo stream`` and ``stream_files.py``.

Kept apart from ``run.py`` so that registering the command does not import pyspark.
"""

from __future__ import annotations

import argparse

from spark_loaders.spark_master import add_master_argument

DEFAULT_MAX_FILES = 20


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_master_argument(parser)
    parser.add_argument(
        "--landing",
        metavar="DIR",
        help="directory (or URI) to watch for CSV files (default: data/landing/)",
    )
    when = parser.add_mutually_exclusive_group()
    when.add_argument(
        "--trigger",
        metavar="SECONDS",
        type=float,
        default=1.0,
        help="start a micro-batch every SECONDS while files arrive (default: 1)",
    )
    when.add_argument(
        "--available-now",
        action="store_true",
        help="process everything present in bounded micro-batches, then exit (CI, cron)",
    )
    parser.add_argument(
        "--checkpoint",
        metavar="DIR",
        help="Spark checkpoint directory (default: .condo/stream/checkpoint)",
    )
    parser.add_argument(
        "--max-files-per-trigger",
        metavar="N",
        type=int,
        default=DEFAULT_MAX_FILES,
        help=f"at most N files per micro-batch (default: {DEFAULT_MAX_FILES})",
    )
    parser.add_argument(
        "--archive",
        metavar="DIR",
        help="where Spark moves committed files; outside the landing dir (default: data/processed/)",
    )
    parser.add_argument(
        "--rejected",
        metavar="DIR",
        help="where copies of whole-file rejects and their reasons go (default: data/rejected/)",
    )
    parser.add_argument(
        "--status-file",
        metavar="FILE",
        help="JSON progress file for monitoring (default: .condo/stream/status.json)",
    )
    parser.add_argument(
        "--http-port",
        metavar="PORT",
        type=int,
        help="also serve the progress JSON on http://127.0.0.1:PORT/status",
    )
    parser.add_argument(
        "--settle-seconds",
        metavar="S",
        type=float,
        default=2.0,
        help="load a file only once its size and mtime have not changed for S seconds (default: 2)",
    )
    parser.add_argument(
        "--db-retry-seconds",
        metavar="S",
        type=float,
        default=60.0,
        help="how long a micro-batch waits for PostgreSQL to come back before failing (default: 60)",
    )
