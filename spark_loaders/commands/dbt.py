"""``condo dbt ARGS...``: run dbt with the project's profile and connection already set."""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys

from spark_loaders.dbt_env import dbt_environment, target_from_args
from spark_loaders.errors import CondoError
from spark_loaders.paths import project_root


def register(sub: argparse._SubParsersAction) -> None:
    sub.add_parser(
        "dbt",
        help="run dbt with the right profile and connection (arguments pass through)",
        add_help=False,
    )


def passthrough(args: list[str]) -> int:
    """Run dbt. ``build``, ``run``, ``seed`` and ``snapshot`` on PostgreSQL hold the run lock
    (``spark_loaders.run_lock``) while dbt runs; ``--no-wait`` fails instead of waiting."""
    from spark_loaders.run_lock import NO_WAIT, dbt_takes_lock, exclusive_run

    wait = NO_WAIT not in args
    args = [a for a in args if a != NO_WAIT]
    env = dbt_environment(target_from_args(args))
    dbt = shutil.which(
        "dbt", path=os.pathsep.join([os.path.dirname(sys.executable), env.get("PATH", "")])
    )
    if dbt is None:
        raise CondoError("dbt is not installed in this environment; run `make install`")
    os.chdir(project_root())
    if dbt_takes_lock(args):
        with exclusive_run(f"dbt {args[0] if args else ''}".strip(), wait=wait):
            return subprocess.run([dbt, *args], env=env, check=False).returncode
    os.execve(dbt, [dbt, *args], env)
    return 0  # pragma: no cover - execve does not return
