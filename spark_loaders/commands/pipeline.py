"""``condo pipeline``: placeholder until its issue lands."""

from __future__ import annotations

import argparse

from spark_loaders.errors import CondoError


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser("pipeline", help="(not implemented yet)")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    raise CondoError("`condo pipeline` is not implemented yet")
