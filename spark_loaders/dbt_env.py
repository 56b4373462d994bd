"""The environment dbt runs in: connection variables for ``profiles/profiles.yml`` and
the local Spark warehouse for the ``spark`` target."""

from __future__ import annotations

import os

from spark_loaders import connection
from spark_loaders.domain import POSTGRES_TARGET
from spark_loaders.paths import project_root
from spark_loaders.spark_session import spark_dir

POSTGRES_TARGETS = (POSTGRES_TARGET,)  # the dbt targets that connect to PostgreSQL

# dbt invocations that never open a connection: no database needs to be started for them.
OFFLINE_COMMANDS = frozenset(
    {"--help", "-h", "help", "--version", "-v", "parse", "ls", "list", "clean", "deps", "init"}
)


def needs_database(args: list[str]) -> bool:
    """Whether ``dbt ARGS`` may connect: false for help, version, parse and ls."""
    first = next((arg for arg in args if arg in OFFLINE_COMMANDS or not arg.startswith("-")), None)
    if first is None:
        return False  # bare `dbt` prints its help
    return first not in OFFLINE_COMMANDS and "--help" not in args and "-h" not in args


def dbt_environment(target: str | None, *, connect: bool = True) -> dict[str, str]:
    """``os.environ`` plus what dbt needs for ``target`` (None means the profile's default);
    without ``connect`` the database is neither resolved nor started."""
    env = dict(os.environ)
    env.setdefault("DBT_SEND_ANONYMOUS_USAGE_STATS", "false")
    env.setdefault("DBT_PROFILES_DIR", str(project_root() / "profiles"))
    env.setdefault("DBT_PROJECT_DIR", str(project_root()))
    env.setdefault("CONDO_SPARK_DIR", str(spark_dir()))
    if connect and target in (None, *POSTGRES_TARGETS):
        env.update(connection.resolve("transformer").env())
    return env


def target_from_args(args: list[str]) -> str | None:
    for i, arg in enumerate(args):
        if arg in ("-t", "--target") and i + 1 < len(args):
            return args[i + 1]
        if arg.startswith("--target="):
            return arg.split("=", 1)[1]
    return os.environ.get("CONDO_DBT_TARGET")
