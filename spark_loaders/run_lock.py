"""One ``condo pipeline`` or ``condo dbt build`` at a time per database.

Two overlapping runs would interleave: one's dbt swapping gold tables while the other's loads
change bronze under it, two dbt runs racing on the same incremental watermarks. Each run holds
a session-level PostgreSQL advisory lock on its own connection for its whole duration, so
a second run waits for the first (saying so, and naming it), or with ``--no-wait`` fails at
once. PostgreSQL releases the lock with the connection, so a killed run never leaves it
behind. Loads of one entity have their own lock (``ingest/ddl.py``); this one is coarser.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from spark_loaders.domain import POSTGRES_TARGET
from spark_loaders.errors import CondoError

# (namespace, key) for pg_advisory_lock(int4, int4); the namespace is the loader's.
RUN_LOCK_KEY = 0x52554E  # "RUN"

# dbt sub-commands that write relations and so take the lock.
WRITING_DBT_COMMANDS = ("build", "run", "seed", "snapshot")
NO_WAIT = "--no-wait"


class RunLocked(CondoError):
    """Another pipeline or dbt build holds the lock and ``--no-wait`` was given."""

    exit_code = 1


def dbt_takes_lock(args: list[str]) -> bool:
    """True for ``dbt build/run/seed/snapshot`` on the PostgreSQL target."""
    command = next((a for a in args if not a.startswith("-")), None)
    if command not in WRITING_DBT_COMMANDS:
        return False
    for i, arg in enumerate(args):
        if arg == "--target" and i + 1 < len(args) and args[i + 1] != POSTGRES_TARGET:
            return False
        if arg.startswith("--target=") and arg.split("=", 1)[1] != POSTGRES_TARGET:
            return False
    return True


def _holder(conn, namespace: int) -> str:
    row = conn.execute(
        "select a.pid, a.application_name, a.backend_start, a.client_addr "
        "from pg_locks l join pg_stat_activity a on a.pid = l.pid "
        "where l.locktype = 'advisory' and l.granted and l.classid = %s and l.objid = %s "
        "and l.objsubid = 2 limit 1",
        (namespace, RUN_LOCK_KEY),
    ).fetchone()
    if row is None:
        return "another run"
    pid, app, started, addr = row
    who = app or "a client"
    where = f" from {addr}" if addr else ""
    return f"{who}{where} (PostgreSQL backend pid {pid}, connected {started:%Y-%m-%d %H:%M:%S %Z})"


@contextmanager
def exclusive_run(
    what: str, *, wait: bool = True, log: Callable[[str], None] | None = None
) -> Iterator[None]:
    """Hold the run lock on the resolved database for the duration of the block."""
    import psycopg

    from spark_loaders import connection
    from spark_loaders.ingest.ddl import LOCK_NAMESPACE

    info = connection.resolve("transformer")  # the role of the runs it serialises (dbt)
    try:
        kwargs = {**info.psycopg_kwargs(), "application_name": f"condo {what} (pid {os.getpid()})"}
        kwargs.setdefault("connect_timeout", 15)
        conn = psycopg.connect(**kwargs, autocommit=True)
    except psycopg.OperationalError as exc:
        detail = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise CondoError(
            f"cannot connect to PostgreSQL at {info.url(hide_password=True)}: {detail}"
        ) from None
    try:
        key = (LOCK_NAMESPACE, RUN_LOCK_KEY)
        if not conn.execute("select pg_try_advisory_lock(%s, %s)", key).fetchone()[0]:
            holder = _holder(conn, LOCK_NAMESPACE)
            if not wait:
                raise RunLocked(
                    f"condo {what}: another pipeline or dbt build is running against this "
                    f"database: {holder}; not waiting ({NO_WAIT})"
                )
            (log or _stderr)(
                f"condo {what}: waiting for another pipeline or dbt build on this database "
                f"to finish: {holder}"
            )
            conn.execute("select pg_advisory_lock(%s, %s)", key)
        yield
    finally:
        conn.close()


def _stderr(message: str) -> None:
    logging.getLogger(__name__).info("%s", message)
