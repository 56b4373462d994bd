"""``condo bronze compact``: merge old load partitions of the PostgreSQL bronze tables."""

from __future__ import annotations

import argparse
import logging

from spark_loaders.domain import ENTITIES


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser("bronze", help="maintain the PostgreSQL bronze tables")
    actions = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    compact = actions.add_parser(
        "compact",
        help="merge old load partitions of bronze tables into one (lineage kept exactly)",
        description="Merge the load partitions of bronze tables whose loads all finished "
        "more than --older-than days ago into one partition per table, keeping every row "
        "and its lineage. Atomic; readers wait only for the final swap. Exit code 1 if a "
        "table could not be compacted.",
    )
    add_compact_arguments(compact)
    compact.set_defaults(func=run)


def add_compact_arguments(parser: argparse.ArgumentParser) -> None:
    from spark_loaders.ingest import compact

    parser.add_argument(
        "--entity",
        choices=[e.name for e in ENTITIES],
        action="append",
        help="compact only this table (repeatable; default: all four)",
    )
    parser.add_argument(
        "--older-than",
        type=float,
        default=compact.DEFAULT_OLDER_THAN_DAYS,
        metavar="DAYS",
        help=f"merge partitions whose loads finished more than DAYS ago "
        f"(default {compact.DEFAULT_OLDER_THAN_DAYS:g}; 0 merges every load partition)",
    )
    parser.add_argument(
        "--max-rows",
        type=int,
        default=compact.DEFAULT_MAX_ROWS,
        help="a merged partition holding this many rows is left as it is "
        f"(default {compact.DEFAULT_MAX_ROWS:,})",
    )
    parser.add_argument(
        "--lock-timeout",
        type=float,
        default=compact.DEFAULT_LOCK_TIMEOUT_S,
        metavar="SECONDS",
        help="longest wait for the table lock of the final swap before backing off "
        f"(default {compact.DEFAULT_LOCK_TIMEOUT_S:g})",
    )
    parser.add_argument(
        "--lock-wait",
        type=float,
        default=compact.DEFAULT_LOCK_WAIT_S,
        metavar="SECONDS",
        help="give up (changing nothing) when the swap could not lock the table in this "
        f"time (default {compact.DEFAULT_LOCK_WAIT_S:g})",
    )
    parser.add_argument(
        "--dry-run", action="store_true", help="show what would be merged, change nothing"
    )


def options_from(args: argparse.Namespace):
    from spark_loaders.ingest.compact import Options

    return Options(
        older_than_days=args.older_than,
        max_rows=args.max_rows,
        lock_timeout_s=args.lock_timeout,
        lock_wait_s=args.lock_wait,
        dry_run=args.dry_run,
    )


def run(args: argparse.Namespace) -> int:
    from spark_loaders.ingest.compact import compact_all, describe

    results = compact_all(args.entity, options_from(args), on_wait=_note)
    for result in results:
        print(describe(result))
    return 1 if any(r.status == "failed" for r in results) else 0


def _note(message: str) -> None:
    logging.getLogger(__name__).info("%s", message)
