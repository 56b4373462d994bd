"""Shared by ``condo load`` and ``spark-submit spark_loaders/load_files.py``: run a load,
print the summary, compute the exit code."""

from __future__ import annotations

import argparse
from collections.abc import Sequence

from spark_loaders.domain import DEFAULT_TARGET, TARGETS
from spark_loaders.errors import CondoError
from spark_loaders.ingest.report import IngestReport, make_console, summary_table
from spark_loaders.spark_master import add_master_argument


def add_arguments(parser: argparse.ArgumentParser) -> None:
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


def _rate(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not 0 <= value <= 1:
        raise argparse.ArgumentTypeError("must be between 0 and 1")
    return value


def exit_code(report: IngestReport, max_reject_rate: float | None) -> int:
    return 0 if report.ok and not report.over_reject_rate(max_reject_rate) else 1


def run_load(spark, paths: Sequence[str], args: argparse.Namespace) -> int:
    from spark_loaders.ingest.api import ingest_files
    from spark_loaders.logs import setup_logging
    from spark_loaders.paths import sample_dir

    setup_logging()  # the progress lines; a no-op under the CLI, which set it up already
    targets = list(paths) or [str(sample_dir())]
    report = ingest_files(
        spark, targets, target=args.target, force=args.force, progress=not args.quiet
    )
    console = make_console()
    if not report.files:
        raise CondoError(f"no entity files found in {', '.join(targets)}")
    console.print(summary_table(report))
    for result in report.over_reject_rate(args.max_reject_rate):
        console.print(
            f"{result.path.name}: {result.reject_rate:.2%} of rows rejected, above "
            f"--max-reject-rate {args.max_reject_rate:g}"
        )
    code = exit_code(report, args.max_reject_rate)
    if code:
        bad = [f for f in report.files if not f.ok]
        if bad:
            console.print(f"{len(bad)} file(s) rejected or failed; see the table above")
    return code
