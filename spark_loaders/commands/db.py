"""``condo db start|stop|status|url|env``: manage the embedded PostgreSQL server and tell
other tools (plain dbt, psql) how to reach the configured database."""

from __future__ import annotations

import argparse
import json
import os

from spark_loaders import connection, embedded_pg
from spark_loaders.errors import CondoError


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser("db", help="manage the embedded PostgreSQL server")
    actions = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    actions.add_parser("start", help="start the embedded server (initialising it on first use)")
    actions.add_parser("stop", help="stop the embedded server")
    status = actions.add_parser("status", help="show where the database is and whether it runs")
    status.add_argument("--json", action="store_true", help="print machine-readable JSON")
    actions.add_parser("url", help="print a libpq URL for the configured database")
    env = actions.add_parser(
        "env",
        help='print export lines for plain dbt and psql: eval "$(condo db env)"',
        description="Print the variables plain `dbt` and `psql` need (PG*, PGPASSFILE, "
        "DBT_PROFILES_DIR, DBT_PROJECT_DIR, CONDO_SPARK_DIR, CONDO_DBT_TARGET) as shell "
        "export lines. The password goes to a 0600 password file, never to the output.",
    )
    env.add_argument(
        "--target",
        choices=("postgres", "spark"),
        default="postgres",
        help="the dbt target plain dbt should use (default postgres)",
    )
    parser.set_defaults(func=run)


def _external() -> connection.ConnectionInfo | None:
    return connection.from_environment(os.environ)


def run(args: argparse.Namespace) -> int:
    external = _external()
    if args.action == "url":
        print(connection.resolve().url())
        return 0
    if args.action == "env":
        from spark_loaders import shell_env

        print(shell_env.render(shell_env.environment(args.target)), end="")
        return 0
    if args.action == "status":
        if external is not None:
            info = {"source": external.source, "url": external.url(hide_password=True)}
        else:
            info = {"source": "embedded", **embedded_pg.status()}
        if args.json:
            print(json.dumps(info, indent=2))
        else:
            for key, value in info.items():
                print(f"{key:15} {value}")
        return 0 if external is not None or info["running"] else 3
    if external is not None:
        raise CondoError(
            f"an external database is configured ({external.url(hide_password=True)}); "
            "`condo db start/stop` only manage the embedded one"
        )
    if args.action == "start":
        started = embedded_pg.ensure_running()
        print(f"embedded PostgreSQL is running at {started.url(hide_password=True)}")
        return 0
    if args.action == "stop":
        print(
            "embedded PostgreSQL stopped"
            if embedded_pg.stop()
            else "embedded PostgreSQL was not running"
        )
        return 0
    raise AssertionError(args.action)
