"""``condo thrift``: Spark's Thrift server over the project's warehouse, for dbt's
``spark_thrift`` target."""

from __future__ import annotations

import argparse
import logging
import os

from spark_loaders.spark_master import add_master_argument, apply_master


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser(
        "thrift",
        help="run Spark's Thrift server over the loaders' warehouse (dbt --target spark_thrift)",
        description="Run Spark's Thrift (HiveServer2) server in the foreground, on the "
        "warehouse and Derby metastore under $CONDO_SPARK_DIR that `condo load --target spark` "
        "writes. Derby admits one process at a time: stop the server before loading.",
    )
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on")
    parser.add_argument(
        "--port",
        type=int,
        default=int(os.environ.get("CONDO_SPARK_THRIFT_PORT", "10000")),
        help="port (default: $CONDO_SPARK_THRIFT_PORT, else 10000)",
    )
    add_master_argument(parser)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from spark_loaders.java_check import check_java
    from spark_loaders.spark_master import configured_master
    from spark_loaders.thrift_server import server_command, server_environment

    apply_master(args)
    check_java()
    command = server_command(master=configured_master())
    logging.getLogger(__name__).info(
        "starting the Spark Thrift server (master %s): %s", configured_master(), command[0]
    )
    # exec: the server keeps this process id, so a supervisor (or a test) stops it directly.
    os.execve(command[0], command, server_environment(host=args.host, port=args.port))
    return 0  # not reached
