"""Shared by ``condo load`` and ``spark-submit spark_loaders/load_files.py``: run a load,
print the summary, compute the exit code. The options are in :data:`spark_loaders.jobs.LOAD`."""

from __future__ import annotations

import argparse
from collections.abc import Sequence

from spark_loaders.errors import CondoError
from spark_loaders.ingest.report import IngestReport, make_console, summary_table


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
