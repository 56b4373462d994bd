"""``condo db env``: the shell environment under which plain ``dbt`` and ``psql`` reach the
project's database, printed as ``export`` lines for ``eval "$(condo db env)"``.

The password never appears in the output (so not in shell history, ``ps`` or ``env``
dumps): it goes to a libpq password file, mode 0600, under the state directory, and
``PGPASSFILE`` names that file. libpq, psql, dbt-postgres and :mod:`spark_loaders.connection`
all read it.
"""

from __future__ import annotations

import os
import shlex
from collections.abc import Iterable
from pathlib import Path

from spark_loaders import connection
from spark_loaders.connection import ConnectionInfo
from spark_loaders.dbt_env import POSTGRES_TARGETS
from spark_loaders.paths import project_root, state_dir
from spark_loaders.spark_session import spark_dir


def passfile_path() -> Path:
    return state_dir() / "pgpass"


def _escape(field: str) -> str:
    return field.replace("\\", "\\\\").replace(":", "\\:")


def passfile_line(info: ConnectionInfo) -> str:
    """One ``host:port:database:user:password`` line; any database on that server."""
    fields = (info.host, str(info.port), "*", info.user, info.password or "")
    return ":".join(_escape(field) for field in fields)


def write_passfile(infos: Iterable[ConnectionInfo], path: Path | None = None) -> Path:
    """Write the passwords of ``infos`` to a libpq password file readable by its owner only
    (libpq ignores a password file that others can read)."""
    path = path or passfile_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    text = "".join(passfile_line(info) + "\n" for info in infos if info.password)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.fchmod(fd, 0o600)
        os.write(fd, text.encode("utf-8"))
    finally:
        os.close(fd)
    return path


def environment(target: str, role: connection.Job | None = "transformer") -> dict[str, str | None]:
    """The variables to export (None: to unset) for dbt on ``target`` and for psql, connecting
    as ``role`` (default the transformer, as ``condo dbt`` does; None: the administrator)."""
    env: dict[str, str | None] = {
        "DBT_PROFILES_DIR": str(project_root() / "profiles"),
        "DBT_PROJECT_DIR": str(project_root()),
        "DBT_SEND_ANONYMOUS_USAGE_STATS": "false",
        "CONDO_DBT_TARGET": target,
        "CONDO_SPARK_DIR": str(spark_dir()),
    }
    if target in POSTGRES_TARGETS:
        info = connection.resolve(role)
        pg = info.env()
        pg.pop("PGPASSWORD", None)
        env.update(pg)
        if info.password:
            env["PGPASSFILE"] = str(write_passfile([info]))
        elif os.environ.get("PGPASSFILE"):
            env["PGPASSFILE"] = os.environ["PGPASSFILE"]
        # A PGPASSWORD left in the shell would win over the password file.
        env["PGPASSWORD"] = None
    return env


def render(env: dict[str, str | None]) -> str:
    lines = []
    for key, value in env.items():
        if value is None:
            lines.append(f"unset {key}")
        else:
            lines.append(f"export {key}={shlex.quote(value)}")
    return "\n".join(lines) + "\n"
