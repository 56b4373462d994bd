"""Files the stream could not load yet: still being written, or failed (unreadable, changed
during the load). Spark's file source hands a file over once, so the stream keeps these
itself, in ``ops.stream_retries`` (one row per landing path), and retries them with
exponential backoff between and after micro-batches. A row disappears when its file is
loaded, skipped as a duplicate or rejected whole; until then ``condo monitor`` reports it.

Spark archives a micro-batch's files when it plans the next one, so a retried file is looked
for at its landing path first, then at its archived path (the archive directory plus the
landing path, which is where ``cleanSource=archive`` puts it).
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

# No `create schema`: the caller has run ingest.ddl.ensure_schema, which creates ops only when
# missing (`create schema if not exists` needs CREATE on the database, which the loader
# role does not have).
DDL = """
create table if not exists ops.stream_retries (
    path            text        primary key,
    entity          text,
    reason          text        not null,
    error           text,
    attempts        integer     not null default 1,
    query_id        text,
    batch_id        bigint,
    first_failed_at timestamptz not null default now(),
    last_attempt_at timestamptz not null default now(),
    next_attempt_at timestamptz not null
);
comment on table ops.stream_retries is
    'Files condo stream has not loaded yet (not settled, or failed); retried with backoff.';
"""

NOT_SETTLED = "not_settled"
MAX_BACKOFF_SECONDS = 300.0


def backoff_seconds(attempts: int, base: float) -> float:
    """base, 2 base, 4 base, ... capped at five minutes."""
    return min(MAX_BACKOFF_SECONDS, base * (2 ** max(0, attempts - 1)))


@dataclass(frozen=True)
class Pending:
    path: str
    entity: str | None
    reason: str
    attempts: int
    batch_id: int | None


def ensure_table(conn: Any) -> None:
    with conn.transaction():
        conn.execute(DDL)


def remember(
    conn: Any,
    *,
    path: str,
    entity: str | None,
    reason: str,
    error: str | None,
    query_id: str,
    batch_id: int | None,
    base_seconds: float,
) -> int:
    """Add a file to the queue or count one more failed attempt; returns the attempts."""
    row = conn.execute(
        "select attempts from ops.stream_retries where path = %s", (path,)
    ).fetchone()
    attempts = (row[0] + 1) if row else 1
    delay = backoff_seconds(attempts, base_seconds)
    conn.execute(
        """
        insert into ops.stream_retries (
            path, entity, reason, error, attempts, query_id, batch_id, next_attempt_at
        ) values (%s, %s, %s, %s, %s, %s, %s, now() + make_interval(secs => %s))
        on conflict (path) do update set
            reason = excluded.reason, error = excluded.error, attempts = excluded.attempts,
            last_attempt_at = now(), next_attempt_at = excluded.next_attempt_at
        """,
        (path, entity, reason, error, attempts, query_id, batch_id, delay),
    )
    return attempts


def forget(conn: Any, path: str) -> None:
    conn.execute("delete from ops.stream_retries where path = %s", (path,))


def due(conn: Any, *, every: bool = False) -> list[Pending]:
    """Rows whose backoff has elapsed (all rows when ``every``), oldest first."""
    rows = conn.execute(
        "select path, entity, reason, attempts, batch_id from ops.stream_retries "
        "where %s or next_attempt_at <= now() order by first_failed_at, path",
        (every,),
    ).fetchall()
    return [Pending(*r) for r in rows]


def count(conn: Any) -> int:
    return conn.execute("select count(*) from ops.stream_retries").fetchone()[0]


def locate(path: str, archive: str | None) -> str | None:
    """Where the file is now: its landing path, or where Spark archived it."""
    if os.path.lexists(path):
        return path
    if archive and "://" not in path and "://" not in archive:
        archived = Path(archive) / path.lstrip("/")
        if os.path.lexists(archived):
            return str(archived)
    return None


def wait_settled(
    paths: list[str],
    settle_seconds: float,
    budget_seconds: float,
    *,
    clock: Callable[[], float] = time.time,
    sleep: Callable[[float], None] = time.sleep,
) -> tuple[list[str], list[str]]:
    """Split ``paths`` into files whose size and mtime stayed unchanged for
    ``settle_seconds`` and files still changing when ``budget_seconds`` ran out.

    A file last modified at least ``settle_seconds`` ago is settled at once (its mtime says
    nobody wrote it since); a recent or future mtime is watched until size and mtime have
    stayed put for ``settle_seconds``. A path that vanishes, or that is not a local path, is
    left to the loader (which records what it finds)."""
    if settle_seconds <= 0:
        return list(paths), []
    start = clock()
    seen: dict[str, tuple[int, int]] = {}
    since: dict[str, float] = {}
    settled: list[str] = []
    waiting = list(paths)
    while True:
        now = clock()
        still: list[str] = []
        for path in waiting:
            try:
                st = os.lstat(path)
            except OSError:
                settled.append(path)
                continue
            key = (st.st_size, st.st_mtime_ns)
            age = now - st.st_mtime
            if path not in seen and age >= settle_seconds:
                settled.append(path)
                continue
            if seen.get(path) != key:
                seen[path], since[path] = key, now
            if now - since[path] >= settle_seconds:
                settled.append(path)
            else:
                still.append(path)
        waiting = still
        if not waiting or now - start >= budget_seconds:
            return sorted(settled), sorted(waiting)
        sleep(min(0.25, settle_seconds / 4))
