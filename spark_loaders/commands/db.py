"""``condo db start|stop|status|url|env|roles|psql``: the embedded PostgreSQL server, the
job roles, and connecting to either without exposing a password (``env`` tells plain dbt
and psql how to reach the configured database)."""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

from spark_loaders import connection, embedded_pg, roles
from spark_loaders.domain import DEFAULT_TARGET, TARGETS
from spark_loaders.errors import CondoError

ROLE_CHOICES = (*connection.JOBS, "admin")


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser("db", help="manage the embedded PostgreSQL server and the job roles")
    actions = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    actions.add_parser("start", help="start the embedded server (initialising it on first use)")
    actions.add_parser("stop", help="stop the embedded server")
    status = actions.add_parser("status", help="show where the database is and whether it runs")
    status.add_argument("--json", action="store_true", help="print machine-readable JSON")
    url = actions.add_parser("url", help="print a libpq URL for the configured database")
    url.add_argument(
        "--role",
        choices=connection.JOBS,
        help="the URL of a job's role, without its password (e.g. reader, for BI tools)",
    )
    actions.add_parser(
        "roles",
        help="create or repair the job roles and their grants (run once as an administrator)",
        description=(
            "Creates condo_loader, condo_transformer, condo_reader and condo_monitor and "
            "their schemas and grants, idempotently. Connects as the administrator given by "
            "CONDO_DATABASE_URL / PG* (or the embedded superuser). Passwords come from "
            "CONDO_LOADER_PASSWORD, CONDO_TRANSFORMER_PASSWORD, CONDO_READER_PASSWORD and "
            "CONDO_MONITOR_PASSWORD; an existing role keeps its password when none is given."
        ),
    )
    psql = actions.add_parser(
        "psql",
        help="open psql as a role, the password passed through a private temporary file",
    )
    psql.add_argument(
        "--role",
        choices=ROLE_CHOICES,
        default="reader",
        help="whose connection to use (default reader; admin is the bootstrap superuser)",
    )
    psql.add_argument("psql_args", nargs=argparse.REMAINDER, help="arguments passed to psql")
    env = actions.add_parser(
        "env",
        help='print export lines for plain dbt and psql: eval "$(condo db env)"',
        description="Print the variables plain `dbt` and `psql` need (PG*, PGPASSFILE, "
        "DBT_PROFILES_DIR, DBT_PROJECT_DIR, CONDO_SPARK_DIR, CONDO_DBT_TARGET) as shell "
        "export lines. The password goes to a 0600 password file, never to the output.",
    )
    env.add_argument(
        "--target",
        choices=TARGETS,
        default=DEFAULT_TARGET,
        help="the dbt target plain dbt should use (default postgres)",
    )
    env.add_argument(
        "--role",
        choices=ROLE_CHOICES,
        default="transformer",
        help="whose connection to export (default transformer, as `condo dbt` uses; "
        "admin is the bootstrap superuser)",
    )
    parser.set_defaults(func=run)


def _external() -> connection.ConnectionInfo | None:
    return connection.from_environment(os.environ)


def password_variable(job: connection.Job) -> str:
    return f"CONDO_{job.upper()}_PASSWORD"


def run(args: argparse.Namespace) -> int:
    external = _external()
    if args.action == "url":
        return _url(args.role)
    if args.action == "roles":
        return _roles(external)
    if args.action == "psql":
        return run_psql(None if args.role == "admin" else args.role, args.psql_args)
    if args.action == "env":
        return _env(args.target, None if args.role == "admin" else args.role)
    if args.action == "status":
        return _status(external, as_json=args.json)
    if external is not None:
        raise CondoError(
            f"an external database is configured ({external.url(hide_password=True)}); "
            "`condo db start/stop` only manage the embedded one"
        )
    return _start_or_stop(args.action)


def _url(role: connection.Job | None) -> int:
    if role:
        info = connection.resolve(role)
        print(replace(info, password=None).url())
    else:
        print(connection.resolve().url())
    return 0


def _env(target: str, role: connection.Job | None) -> int:
    from spark_loaders import shell_env

    print(shell_env.render(shell_env.environment(target, role)), end="")
    return 0


def _status(external: connection.ConnectionInfo | None, *, as_json: bool) -> int:
    if external is not None:
        shown: dict[str, object] = {
            "source": external.source,
            "url": external.url(hide_password=True),
        }
    else:
        shown = {"source": "embedded", **embedded_pg.status()}
    if as_json:
        print(json.dumps(shown, indent=2))
    else:
        for key, value in shown.items():
            print(f"{key:15} {value}")
    return 0 if external is not None or shown["running"] else 3


def _start_or_stop(action: str) -> int:
    """``start`` and ``stop`` of the embedded server."""
    if action == "start":
        started = embedded_pg.ensure_running()
        print(f"embedded PostgreSQL is running at {started.url(hide_password=True)}")
        return 0
    if action == "stop":
        print(
            "embedded PostgreSQL stopped"
            if embedded_pg.stop()
            else "embedded PostgreSQL was not running"
        )
        return 0
    raise AssertionError(action)


def _roles(external: connection.ConnectionInfo | None) -> int:
    import psycopg

    if external is None:
        admin = embedded_pg.ensure_running()
        passwords: dict = embedded_pg.role_passwords()
    else:
        admin = external
        passwords = {job: os.environ.get(password_variable(job)) or None for job in connection.JOBS}
    try:
        with psycopg.connect(**admin.psycopg_kwargs(), autocommit=True) as conn:
            created = roles.apply(conn, passwords)
    except psycopg.errors.InsufficientPrivilege as exc:
        raise CondoError(
            f"{admin.user} may not create the roles or grant on {admin.dbname} "
            f"({' '.join(str(exc).split())}); run `condo db roles` once as a superuser"
        ) from exc
    except psycopg.OperationalError as exc:
        raise CondoError(f"cannot connect to {admin.url(hide_password=True)}: {exc}") from exc
    where = admin.url(hide_password=True)
    for job in connection.JOBS:
        name = roles.role_name(job)
        state = "created" if name in created else "up to date"
        print(f"{name:18} {state:11} {roles.ROLES[job].description}")
    print(f"schemas and grants applied in {where}")
    if external is not None:
        missing = [
            job
            for job in connection.JOBS
            if roles.role_name(job) in created and not passwords.get(job)
        ]
        for job in missing:
            print(
                f"{roles.role_name(job)} has no password and cannot log in yet: "
                f"export {password_variable(job)}=... and run `condo db roles` again"
            )
        print("Give each job its connection, e.g.:")
        for job in connection.JOBS:
            url = replace(admin, user=roles.role_name(job), password=None).url()
            print(
                f"  export {connection.job_url_variable(job)}={url}  # add :PASSWORD after the user"
            )
    return 0


def _passfile_field(value: str) -> str:
    return value.replace("\\", "\\\\").replace(":", "\\:")


@contextlib.contextmanager
def private_passfile(info: connection.ConnectionInfo) -> Iterator[Path | None]:
    """A ``.pgpass`` file (mode 0600) holding ``info``'s password, removed afterwards."""
    if not info.password:
        yield None
        return
    fd, name = tempfile.mkstemp(prefix="condo-pgpass-")
    path = Path(name)
    try:
        os.fchmod(fd, 0o600)
        fields = (info.host, str(info.port), info.dbname, info.user, info.password)
        with os.fdopen(fd, "w") as fh:
            fh.write(":".join(_passfile_field(f) for f in fields) + "\n")
        yield path
    finally:
        path.unlink(missing_ok=True)


def psql_command(
    info: connection.ConnectionInfo, passfile: Path | None, extra: list[str]
) -> tuple[list[str], dict[str, str]]:
    """psql's argv and environment: the connection as keywords, the password only in the
    passfile (never in argv, where `ps` shows it, nor in PGPASSWORD)."""
    binary = shutil.which("psql") or str(embedded_pg._bin("psql"))
    conninfo = f"host={info.host} port={info.port} dbname={info.dbname} user={info.user}"
    if info.sslmode:
        conninfo += f" sslmode={info.sslmode}"
    env = {k: v for k, v in os.environ.items() if k not in ("PGPASSWORD", "CONDO_DATABASE_URL")}
    if passfile is not None:
        env["PGPASSFILE"] = str(passfile)
    args = extra[1:] if extra[:1] == ["--"] else extra
    return [binary, conninfo, *args], env


def run_psql(job: connection.Job | None, extra: list[str]) -> int:
    info = connection.resolve(job)
    with private_passfile(info) as passfile:
        argv, env = psql_command(info, passfile, extra)
        try:
            return subprocess.run(argv, env=env, check=False).returncode
        except FileNotFoundError as exc:
            raise CondoError(f"psql not found: {exc.filename}") from exc
