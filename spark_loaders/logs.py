"""How the jobs report progress: the standard ``logging`` module, set up here and only here.

Every job (``condo load``, ``stream``, ``export``, ``pipeline``, ``monitor serve``,
``thrift``, ``bronze compact`` and the spark-submit scripts) writes its progress lines,
warnings and waits through ``logging.getLogger(__name__)``. :func:`setup_logging` gives the
``spark_loaders`` logger one handler on standard error with one format::

    2026-05-01 12:00:00,123 INFO spark_loaders.ingest.report: [1/4] condominios ...

Standard output stays for results: the CLI's tables (rich), ``--format json``, ``condo db
env``. So ``condo load ... > report.txt`` keeps the table, and a scheduler's log (journald,
Airflow, cron mail) gets timestamped lines. One-line user errors (``condo: error: ...``) are
printed by the CLI, unchanged.

The level comes from ``--log-level`` (``condo --log-level DEBUG load ...``), else from
``CONDO_LOG_LEVEL``, else INFO. Spark's own JVM log level is separate:
``CONDO_SPARK_LOG_LEVEL`` (spark_session.py).
"""

from __future__ import annotations

import logging
import os
import sys

from spark_loaders.errors import CondoError

FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
LEVEL_ENV = "CONDO_LOG_LEVEL"
LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")
PACKAGE_LOGGER = "spark_loaders"


class _CurrentStderr(logging.StreamHandler):
    """Writes to whatever ``sys.stderr`` is when a record is emitted, not when the handler
    was made: a test capturing stderr, or a caller redirecting it, sees every line."""

    @property  # type: ignore[override]
    def stream(self):
        return sys.stderr

    @stream.setter
    def stream(self, value) -> None:  # StreamHandler.__init__ assigns it; ignore that
        pass


def level_from(flag: str | None = None) -> int:
    """The level a flag or ``CONDO_LOG_LEVEL`` names; INFO when neither is set."""
    name = (flag or os.environ.get(LEVEL_ENV) or "INFO").strip().upper()
    if name not in LEVELS:
        source = "--log-level" if flag else LEVEL_ENV
        raise CondoError(f"{source}={name!r}: use one of {', '.join(LEVELS)}")
    return logging.getLevelName(name)


def setup_logging(level: str | None = None) -> None:
    """Give the package logger its one handler and format, at ``level`` (see
    :func:`level_from`). Idempotent: the CLI calls it first, and a job's own ``main()``
    (which spark-submit runs without the CLI) calls it again without a level, which keeps
    the level already set."""
    logger = logging.getLogger(PACKAGE_LOGGER)
    configured = any(isinstance(h, _CurrentStderr) for h in logger.handlers)
    if not configured:
        handler = _CurrentStderr()
        handler.setFormatter(logging.Formatter(FORMAT))
        logger.addHandler(handler)
        # The handler above is the output; a root handler (Airflow's, a notebook's) would
        # print every line a second time.
        logger.propagate = False
    if level is not None or not configured:
        logger.setLevel(level_from(level))
