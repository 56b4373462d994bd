"""``condo dbt ARGS...``: run dbt with the project's profile and connection already set."""

from __future__ import annotations

import argparse
import os
import shutil
import sys

from spark_loaders.dbt_env import dbt_environment, needs_database, target_from_args
from spark_loaders.errors import CondoError
from spark_loaders.paths import project_root


def register(sub: argparse._SubParsersAction) -> None:
    sub.add_parser(
        "dbt",
        help="run dbt with the right profile and connection (arguments pass through)",
        add_help=False,
    )


def passthrough(args: list[str]) -> int:
    env = dbt_environment(target_from_args(args), connect=needs_database(args))
    dbt = shutil.which(
        "dbt", path=os.pathsep.join([os.path.dirname(sys.executable), env.get("PATH", "")])
    )
    if dbt is None:
        raise CondoError("dbt is not installed in this environment; run `make install`")
    os.chdir(project_root())
    os.execve(dbt, [dbt, *args], env)
    return 0  # pragma: no cover - execve does not return
