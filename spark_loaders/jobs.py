"""The three Spark jobs (load, export, stream): each job's options, defined once, and the
one wrapper that runs a job from its ``spark-submit`` entry script.

Every job has two front ends that must take the same options:

==========  ======================  =====================================================
job         ``condo`` sub-command   ``spark-submit`` entry script
==========  ======================  =====================================================
load        ``condo load``          ``spark_loaders/load_files.py``
export      ``condo export``        ``spark_loaders/export_gold.py``
stream      ``condo stream``        ``spark_loaders/stream_files.py``
==========  ======================  =====================================================

Both build their parser from the job's :class:`Job` below: ``commands/<job>.py`` calls
:func:`register`, the entry script calls :func:`submit_main`. An option added to a job's
``add_*_arguments`` function therefore shows up in both, and both run the same function.

Importing this module does not import pyspark: ``condo --help`` stays fast.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from spark_loaders.domain import DEFAULT_TARGET, TARGETS
from spark_loaders.errors import CondoError
from spark_loaders.export.models import MODEL_NAMES
from spark_loaders.spark_master import add_master_argument

# ---------------------------------------------------------------------------------------
# load: `condo load`, load_files.py


def _rate(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not 0 <= value <= 1:
        raise argparse.ArgumentTypeError("must be between 0 and 1")
    return value


def add_load_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "paths",
        nargs="*",
        metavar="PATH",
        help="CSV files or directories (default: data/sample/); a file belongs to the entity "
        "its name starts with",
    )
    parser.add_argument(
        "--force",
        action="store_true",
        help="reload files whose content was already loaded, replacing their earlier rows",
    )
    parser.add_argument(
        "--max-reject-rate",
        type=_rate,
        default=None,
        metavar="R",
        help="fail (non-zero exit) when a file rejects more than this fraction of its rows, "
        "e.g. 0.01",
    )
    parser.add_argument(
        "--target",
        choices=TARGETS,
        default=DEFAULT_TARGET,
        help="write PostgreSQL bronze (default) or Spark tables for the dbt spark target",
    )
    parser.add_argument("--quiet", action="store_true", help="no per-file progress lines")
    add_master_argument(parser)


# ---------------------------------------------------------------------------------------
# export: `condo export`, export_gold.py


def add_export_arguments(parser: argparse.ArgumentParser) -> None:
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


# ---------------------------------------------------------------------------------------
# stream: `condo stream`, stream_files.py

DEFAULT_MAX_FILES = 20


def add_stream_arguments(parser: argparse.ArgumentParser) -> None:
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


# ---------------------------------------------------------------------------------------
# The jobs and their two front ends


@dataclass(frozen=True)
class Job:
    name: str  # the `condo` sub-command
    script: str  # the spark-submit entry script in spark_loaders/
    help: str  # one line in `condo --help`
    description: str  # `condo <name> --help` and `<script> --help`
    add_arguments: Callable[[argparse.ArgumentParser], None]
    run: str  # "module:function" taking the parsed arguments and returning the exit code;
    # imported only when the job runs, so that building a parser never imports pyspark


LOAD = Job(
    name="load",
    script="load_files.py",
    help="load CSV extracts into bronze (validated, idempotent, atomic per file)",
    description="Load CSV extracts into bronze. Each file commits its rows, rejects and "
    "ledger entry in one transaction; files already loaded are skipped. Exit code 1 if "
    "a file is rejected whole, fails, or exceeds --max-reject-rate.",
    add_arguments=add_load_arguments,
    run="spark_loaders.commands.load:run",
)

EXPORT = Job(
    name="export",
    script="export_gold.py",
    help="export the gold models to Parquet (one dataset directory per model)",
    description=(
        "Read the gold models (PostgreSQL over JDBC, or Spark tables with --target spark) "
        "and publish each one atomically as <out>/<model>/ with a _manifest.json."
    ),
    add_arguments=add_export_arguments,
    run="spark_loaders.commands.export:run",
)

STREAM = Job(
    name="stream",
    script="stream_files.py",
    help="ingest CSV files dropped into data/landing/ continuously (Spark Structured Streaming)",
    description=(
        "Watch a landing directory and load every CSV file dropped into it into PostgreSQL "
        "bronze with the same rules as `condo load`, exactly once, even across crashes. "
        "Drop files atomically: write them elsewhere (or under a name starting with '.'), "
        "then rename them into the landing directory. See docs/streaming.md."
    ),
    add_arguments=add_stream_arguments,
    run="spark_loaders.streaming.run:main",
)

JOBS = (LOAD, EXPORT, STREAM)


def run_job(job: Job, args: argparse.Namespace) -> int:
    module_name, function = job.run.split(":")
    module = importlib.import_module(module_name)
    entry: Callable[[argparse.Namespace], int] = getattr(module, function)
    return int(entry(args) or 0)


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser], job: Job) -> None:
    """Add ``condo <job.name>`` to the ``condo`` parser's sub-commands."""
    parser = sub.add_parser(job.name, help=job.help, description=job.description)
    job.add_arguments(parser)
    parser.set_defaults(func=lambda args: run_job(job, args))


def script_parser(job: Job) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=job.script,
        description=f"{job.description} Same options as `condo {job.name}`.",
    )
    job.add_arguments(parser)
    return parser


def submit_main(job: Job, argv: list[str] | None = None) -> int:
    """The body of every ``spark-submit`` entry script: parse the job's options, run it, and
    turn a :class:`CondoError` into one line on stderr and its exit code (as ``condo`` does)."""
    args = script_parser(job).parse_args(sys.argv[1:] if argv is None else argv)
    try:
        return run_job(job, args)
    except CondoError as exc:
        print(f"{job.script}: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print(f"{job.script}: interrupted", file=sys.stderr)
        return 130
