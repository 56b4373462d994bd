"""``condo monitor``: health of loads, rejects, freshness, dbt, the export, disk and the
stream, with an exit code; ``condo monitor serve`` exposes the same as Prometheus metrics.

Every threshold is a flag whose default comes from an environment variable
``CONDO_MONITOR_<FLAG>`` (e.g. ``--gold-warn-hours`` <- ``CONDO_MONITOR_GOLD_WARN_HOURS``),
else from the documented default (docs/monitoring.md).
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from dataclasses import fields
from pathlib import Path

from spark_loaders.errors import CondoError
from spark_loaders.paths import lake_dir, landing_dir, state_dir

log = logging.getLogger(__name__)

EXIT = {"ok": 0, "warn": 1, "error": 2}

# flag (without --) -> help; the Thresholds field is the flag with "_" for "-"
THRESHOLD_HELP = {
    "since-hours": "window for failures, reject rates and files by status",
    "freshness-warn-hours": "bronze: warn when an entity's last load is older",
    "freshness-error-hours": "bronze: error when an entity's last load is older",
    "reject-rate-warn": "warn above this share of rejected rows in the window",
    "reject-rate-error": "error above this share of rejected rows in the window",
    "stream-stale-minutes": "the stream's status file counts as stale after this long",
    "gold-warn-hours": "warn when a gold model's last successful build is older",
    "gold-error-hours": "error when a gold model's last successful build is older",
    "export-lag-warn-hours": "warn when the export has been older than gold this long",
    "export-lag-error-hours": "error when the export has been older than gold this long",
    "volume-drop-ratio": "warn when a load brings less than this share of the median",
    "volume-history": "how many previous loads the median covers",
    "volume-min-history": "previous loads needed before the volume check compares",
    "orphan-rate-warn": "warn above this share of rows excluded from silver",
    "orphan-rate-error": "error above this share of rows excluded from silver",
    "disk-free-warn": "warn below this free share of a filesystem",
    "disk-free-error": "error below this free share of a filesystem",
    "bronze-partitions-warn": "warn when a bronze table has this many load partitions "
    "(run `condo bronze compact`)",
}


def env_name(flag: str) -> str:
    return "CONDO_MONITOR_" + flag.replace("-", "_").upper()


def _env_default(flag: str, default, kind):
    raw = os.environ.get(env_name(flag))
    if raw is None or raw == "":
        return default
    try:
        return kind(raw)
    except ValueError:
        raise CondoError(f"{env_name(flag)}={raw!r} is not a valid {kind.__name__}") from None


def register(sub: argparse._SubParsersAction) -> None:
    from spark_loaders.monitor import Thresholds

    parser = sub.add_parser(
        "monitor",
        help="check loads, rejects, freshness, dbt, export, disk and stream; exit 0/1/2; "
        "`monitor serve` serves Prometheus metrics",
        description="Health checks; exit 0 ok, 1 warn, 2 error (3: a --notify delivery failed). "
        "Each threshold also reads CONDO_MONITOR_<FLAG> from the environment.",
    )
    parser.add_argument(
        "action",
        nargs="?",
        choices=("check", "serve"),
        default="check",
        help="check (default): print the checks once; serve: serve /metrics over HTTP",
    )
    parser.add_argument("--format", choices=("table", "json", "prometheus"), default="table")
    parser.add_argument(
        "--output",
        type=Path,
        default=None,
        metavar="FILE",
        help="write the output to FILE atomically (temp file, then rename) instead of stdout",
    )
    defaults = {f.name: f.default for f in fields(Thresholds)}
    for flag, text in THRESHOLD_HELP.items():
        default = defaults[flag.replace("-", "_")]
        kind = type(default)
        parser.add_argument(
            f"--{flag}",
            type=kind,
            default=None,
            help=f"{text} (default {default}; env {env_name(flag)})",
        )
    parser.add_argument(
        "--expect-stream",
        action="store_true",
        default=None,
        help=f"error when the stream is not running (env {env_name('expect-stream')}=1)",
    )
    parser.add_argument(
        "--stream-status",
        type=Path,
        default=None,
        help="the stream's status file (default .condo/stream/status.json)",
    )
    parser.add_argument(
        "--notify",
        metavar="URL",
        default=os.environ.get("CONDO_ALERT_WEBHOOK_URL") or None,
        help="POST a Slack-compatible JSON message to URL when a check changes level "
        "(env CONDO_ALERT_WEBHOOK_URL)",
    )
    parser.add_argument("--host", default="127.0.0.1", help="serve: address (default 127.0.0.1)")
    parser.add_argument(
        "--port",
        type=int,
        default=None,
        help="serve: port (default 9464; env CONDO_MONITOR_PORT)",
    )
    parser.set_defaults(func=run)


def thresholds(args: argparse.Namespace):
    from spark_loaders.monitor import Thresholds

    values = {}
    for f in fields(Thresholds):
        flag = f.name.replace("_", "-")
        given = getattr(args, f.name, None)
        if f.name == "expect_stream":
            raw = os.environ.get(env_name(flag), "")
            values[f.name] = bool(given) or raw.lower() in ("1", "true", "yes")
        else:
            values[f.name] = (
                given if given is not None else _env_default(flag, f.default, type(f.default))
            )
    return Thresholds(**values)


def disk_paths() -> dict[str, Path]:
    return {"lake": lake_dir(), "landing": landing_dir(), "state": state_dir()}


def take_snapshot(limits, status_file: Path):
    import psycopg

    from spark_loaders import connection, monitor

    info = connection.resolve("monitor", start=False)  # never start the embedded server
    with monitor.connect_or_explain(info, psycopg) as conn:
        snapshot = monitor.gather(
            conn,
            since_hours=limits.since_hours,
            stream_status=status_file,
            volume_history=limits.volume_history,
            disk_paths=disk_paths(),
        )
    return snapshot, monitor.evaluate(snapshot, limits)


def run(args: argparse.Namespace) -> int:
    from spark_loaders import monitor

    limits = thresholds(args)
    status_file = args.stream_status or state_dir() / "stream" / "status.json"
    if args.action == "serve":
        return serve(args, limits, status_file)
    snapshot, checks = take_snapshot(limits, status_file)
    level = monitor.overall(checks)
    if args.format == "json":
        text = monitor.to_json(snapshot, checks)
        emit(text + "\n", args.output)
    elif args.format == "prometheus":
        emit(monitor.to_prometheus(snapshot, checks, limits), args.output)
    elif args.output is not None:
        raise CondoError("--output needs --format json or prometheus")
    else:
        print_table(checks, level)
    if args.notify:
        notify(args.notify, snapshot, checks)
    return EXIT[level]


def emit(text: str, output: Path | None) -> None:
    if output is None:
        print(text, end="")
        return
    from spark_loaders.monitor_metrics import write_atomically

    try:
        write_atomically(output, text)
    except OSError as exc:
        raise CondoError(f"cannot write {output}: {exc.strerror or exc}") from None


def print_table(checks, level: str) -> None:
    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table

    table = Table(title=f"condo monitor: {level.upper()}")
    table.add_column("check", no_wrap=True)
    table.add_column("level")
    table.add_column("detail", overflow="fold")  # wrapped, never cut with an ellipsis
    colours = {"ok": "green", "warn": "yellow", "error": "red"}
    for check in checks:
        table.add_row(
            escape(check.name), f"[{colours[check.level]}]{check.level}[/]", escape(check.message)
        )
    # Piped into a file or a mail, rich would assume 80 columns; the check names alone take 50.
    console = Console() if sys.stdout.isatty() else Console(width=200)
    console.print(table)


def notify(url: str, snapshot, checks) -> None:
    import psycopg

    from spark_loaders import connection, monitor
    from spark_loaders.alerting.notify import notify as deliver

    info = connection.resolve("monitor", start=False)
    with monitor.connect_or_explain(info, psycopg) as conn:
        sent = deliver(conn, url, checks, snapshot.taken_at)
    word = f"notified {len(sent)} change(s)" if sent else "no change to notify"
    log.info("condo monitor: %s", word)


def serve(args: argparse.Namespace, limits, status_file: Path) -> int:
    from prometheus_client import CollectorRegistry, start_http_server

    from spark_loaders.monitor_metrics import SnapshotCollector

    def warn(message: str) -> None:
        log.warning("condo monitor serve: snapshot failed: %s", message)

    port = args.port if args.port is not None else _env_default("port", 9464, int)
    registry = CollectorRegistry(auto_describe=False)
    registry.register(SnapshotCollector(lambda: take_snapshot(limits, status_file), limits, warn))
    try:
        server, thread = start_http_server(port, addr=args.host, registry=registry)
    except OSError as exc:
        raise CondoError(f"cannot listen on {args.host}:{port}: {exc.strerror}") from None
    log.info(
        "condo monitor: serving http://%s:%s/metrics (Ctrl-C stops)", args.host, server.server_port
    )
    try:
        thread.join()
    except KeyboardInterrupt:
        pass
    finally:
        server.shutdown()
    return 0
