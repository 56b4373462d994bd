"""``condo stream``: continuous ingestion of the landing directory into bronze."""

from __future__ import annotations

import argparse


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser(
        "stream",
        help="ingest CSV files dropped into data/landing/ continuously (Spark Structured Streaming)",
        description=(
            "Watch a landing directory and load every CSV file dropped into it into PostgreSQL "
            "bronze with the same rules as `condo load`, exactly once, even across crashes. "
            "Drop files atomically: write them elsewhere (or under a name starting with '.'), "
            "then rename them into the landing directory. See docs/streaming.md."
        ),
    )
    from spark_loaders.streaming.options import add_arguments

    add_arguments(parser)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from spark_loaders.streaming.run import main

    return main(args)
