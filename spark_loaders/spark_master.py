"""``--master URL`` for every Spark command (``condo load``, ``stream``, ``export``,
``pipeline`` and the spark-submit entry scripts), with ``$CONDO_SPARK_MASTER`` as its
environment variable and local mode as the default.

Kept apart from ``spark_session`` so that registering a command does not import pyspark.
"""

from __future__ import annotations

import argparse
import os

from spark_loaders.errors import CondoError

ENV = "CONDO_SPARK_MASTER"
DEFAULT = "local[*]"
_SCHEMES = ("local", "spark://", "yarn", "k8s://", "mesos://")


def add_master_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--master",
        metavar="URL",
        default=None,
        help=f"Spark master, e.g. spark://host:7077 (default: ${ENV}, else {DEFAULT}); "
        "under spark-submit, spark-submit's --master is used unless this is given",
    )


def check_master(url: str) -> str:
    url = url.strip()
    if not url.startswith(_SCHEMES):
        raise CondoError(
            f"--master {url!r} is not a Spark master URL "
            "(local[N], spark://host:port, yarn, k8s://...)"
        )
    return url


def apply_master(args: argparse.Namespace) -> None:
    """Make ``--master`` the session's master: it goes into ``$CONDO_SPARK_MASTER``, which
    :func:`spark_loaders.spark_session.get_spark` reads (and, given explicitly, applies even
    under spark-submit)."""
    master = getattr(args, "master", None)
    if master:
        os.environ[ENV] = check_master(master)
        os.environ["CONDO_SPARK_MASTER_EXPLICIT"] = "1"


def configured_master() -> str:
    return check_master(os.environ.get(ENV) or DEFAULT)


def is_local_master(url: str) -> bool:
    return url.startswith("local")
