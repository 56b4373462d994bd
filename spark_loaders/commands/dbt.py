"""``condo dbt ARGS...``: run dbt with the project's profile and connection already set.

On the PostgreSQL target, the invocation's ``run_results.json`` is then stored in
``ops.dbt_runs`` / ``ops.dbt_results`` (``spark_loaders.ops_history``), so the monitor sees
every build made through ``condo``. dbt's exit code is passed through unchanged.
"""

from __future__ import annotations

import argparse
import logging
import os
import shutil
import subprocess
import sys
from pathlib import Path

from spark_loaders.dbt_env import (
    POSTGRES_TARGETS,
    dbt_environment,
    needs_database,
    target_from_args,
)
from spark_loaders.domain import DEFAULT_TARGET
from spark_loaders.errors import CondoError
from spark_loaders.paths import project_root


def register(sub: argparse._SubParsersAction) -> None:
    sub.add_parser(
        "dbt",
        help="run dbt with the right profile and connection (arguments pass through)",
        add_help=False,
    )


def _option(args: list[str], name: str) -> str | None:
    """The value of ``--name VALUE`` or ``--name=VALUE`` (the last one given), else None."""
    value = None
    for i, arg in enumerate(args):
        if arg == name and i + 1 < len(args):
            value = args[i + 1]
        elif arg.startswith(name + "="):
            value = arg.split("=", 1)[1]
    return value


def run_results_file(args: list[str], env: dict[str, str]) -> Path:
    """Where this invocation writes ``run_results.json``: ``--target-path``, else
    ``$DBT_TARGET_PATH``, else ``target/``; a relative one under the project directory
    dbt was given (``--project-dir``, else ``$DBT_PROJECT_DIR``, else this project). Cosmos,
    for one, runs every task in a temporary copy of the project named by ``--project-dir``."""
    target_path = _option(args, "--target-path") or env.get("DBT_TARGET_PATH") or "target"
    base = Path(target_path)
    if not base.is_absolute():
        # dbt runs in this project's root (run_and_record), so a relative one starts there
        project = _option(args, "--project-dir") or env.get("DBT_PROJECT_DIR") or "."
        base = project_root() / project / base
    return base / "run_results.json"


def passthrough(args: list[str]) -> int:
    """Run dbt and record its results in ``ops.dbt_runs`` (PostgreSQL targets). ``build``,
    ``run``, ``seed`` and ``snapshot`` on PostgreSQL hold the run lock
    (``spark_loaders.run_lock``) while dbt runs; ``--no-wait`` fails instead of waiting."""
    from spark_loaders.run_lock import NO_WAIT, dbt_takes_lock, exclusive_run

    wait = NO_WAIT not in args
    args = [a for a in args if a != NO_WAIT]
    target = target_from_args(args)
    # help, version, parse and ls neither start the database nor record a run.
    online = needs_database(args)
    env = dbt_environment(target, connect=online)
    dbt = shutil.which(
        "dbt", path=os.pathsep.join([os.path.dirname(sys.executable), env.get("PATH", "")])
    )
    if dbt is None:
        raise CondoError("dbt is not installed in this environment; run `make install`")
    if online and dbt_takes_lock(args):
        with exclusive_run(f"dbt {args[0]}", wait=wait):
            return run_and_record(dbt, args, env, target, record=online)
    return run_and_record(dbt, args, env, target, record=online)


def run_and_record(
    dbt: str, args: list[str], env: dict[str, str], target: str | None, *, record: bool = True
) -> int:
    """dbt as a child process (not execve: the run lock and the history need this process
    after dbt ends); its exit code is passed through unchanged."""
    from spark_loaders import ops_history

    started = ops_history.now_utc()
    process = subprocess.Popen([dbt, *args], env=env, cwd=project_root())
    try:
        code = process.wait()
    except KeyboardInterrupt:
        code = process.wait()  # dbt got the same SIGINT; let it finish its cleanup
    if record and target in (None, *POSTGRES_TARGETS):
        record_history(run_results_file(args, env), started, code, target)
    return code


def record_history(path: Path, started, code: int, target: str | None) -> None:
    """Store the run in ops.dbt_runs; a failure to do so is reported, never hidden."""
    from spark_loaders import ops_history

    try:
        ops_history.record_dbt_run_file(
            path,
            started_at=started,
            finished_at=ops_history.now_utc(),
            exit_code=code,
            target=target or DEFAULT_TARGET,
        )
    except Exception as exc:  # the build itself is done; say what was not recorded
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        logging.getLogger(__name__).warning("dbt run history not recorded: %s", first)
