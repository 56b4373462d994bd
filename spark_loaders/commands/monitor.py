"""``condo monitor``: health of loads, rejects, freshness and the stream, with an exit code."""

from __future__ import annotations

import argparse
from pathlib import Path

from spark_loaders.paths import state_dir

EXIT = {"ok": 0, "warn": 1, "error": 2}


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser(
        "monitor",
        help="check loads, rejects, freshness and the stream; exit 0 ok, 1 warn, 2 error",
    )
    parser.add_argument("--format", choices=("table", "json", "prometheus"), default="table")
    parser.add_argument(
        "--since-hours", type=float, default=24.0, help="window for failures and reject rates"
    )
    parser.add_argument("--freshness-warn-hours", type=float, default=24.0)
    parser.add_argument("--freshness-error-hours", type=float, default=72.0)
    parser.add_argument("--reject-rate-warn", type=float, default=0.01)
    parser.add_argument("--reject-rate-error", type=float, default=0.05)
    parser.add_argument(
        "--stream-status",
        type=Path,
        default=None,
        help="the stream's status file (default .condo/stream/status.json)",
    )
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import psycopg

    from spark_loaders import connection, monitor

    limits = monitor.Thresholds(
        since_hours=args.since_hours,
        freshness_warn_hours=args.freshness_warn_hours,
        freshness_error_hours=args.freshness_error_hours,
        reject_rate_warn=args.reject_rate_warn,
        reject_rate_error=args.reject_rate_error,
    )
    status_file = args.stream_status or state_dir() / "stream" / "status.json"
    info = connection.resolve(start=False)  # never start the embedded server: report it
    with monitor.connect_or_explain(info, psycopg) as conn:
        snapshot = monitor.gather(conn, since_hours=limits.since_hours, stream_status=status_file)
    checks = monitor.evaluate(snapshot, limits)
    level = monitor.overall(checks)
    if args.format == "json":
        print(monitor.to_json(snapshot, checks))
    elif args.format == "prometheus":
        print(monitor.to_prometheus(snapshot, checks), end="")
    else:
        from rich.console import Console
        from rich.table import Table
        from rich.text import Text

        # Messages quote file names, headers and errors: Text objects are never parsed as
        # markup, so "[/]" or "[bold]" in them prints literally.
        table = Table(title=Text(f"condo monitor: {level.upper()}"))
        for column in ("check", "level", "detail"):
            table.add_column(column)
        colours = {"ok": "green", "warn": "yellow", "error": "red"}
        for check in checks:
            table.add_row(
                Text(check.name), Text(check.level, style=colours[check.level]), Text(check.message)
            )
        Console(emoji=False).print(table)
    return EXIT[level]
