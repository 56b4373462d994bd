"""``ops.stream_batches``: one row per micro-batch, keyed by (query id, batch id).

The loader's ``ops.loads`` is the ledger of files; this table adds the micro-batch view
(which files arrived together, their totals, duration and latency). It is written with an
upsert after the batch's files have committed, so a replayed batch updates its row instead
of adding one, and ``attempts`` says how many times Spark ran it.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any

from spark_loaders.ingest.ddl import create_schemas_sql

DDL = (
    create_schemas_sql("ops")
    + """
create table if not exists ops.stream_batches (
    query_id        text        not null,
    batch_id        bigint      not null,
    files           jsonb       not null,
    files_total     integer     not null,
    files_loaded    integer     not null,
    files_skipped   integer     not null,
    files_rejected  integer     not null,
    rows_read       bigint      not null,
    rows_loaded     bigint      not null,
    rows_rejected   bigint      not null,
    attempts        integer     not null default 1,
    started_at      timestamptz not null,
    committed_at    timestamptz not null default now(),
    duration_ms     bigint      not null,
    latency_ms      bigint,
    primary key (query_id, batch_id),
    constraint stream_batches_rows_add_up check (rows_read = rows_loaded + rows_rejected)
);
comment on table ops.stream_batches is
    'One row per streaming micro-batch (condo stream); files lists each file and its outcome.';
"""
)

UPSERT = """
insert into ops.stream_batches (
    query_id, batch_id, files, files_total, files_loaded, files_skipped, files_rejected,
    rows_read, rows_loaded, rows_rejected, started_at, duration_ms, latency_ms
) values (
    %(query_id)s, %(batch_id)s, %(files)s::jsonb, %(files_total)s, %(files_loaded)s,
    %(files_skipped)s, %(files_rejected)s, %(rows_read)s, %(rows_loaded)s, %(rows_rejected)s,
    %(started_at)s, %(duration_ms)s, %(latency_ms)s
)
on conflict (query_id, batch_id) do update set
    files = excluded.files,
    files_total = excluded.files_total,
    files_loaded = excluded.files_loaded,
    files_skipped = excluded.files_skipped,
    files_rejected = excluded.files_rejected,
    rows_read = excluded.rows_read,
    rows_loaded = excluded.rows_loaded,
    rows_rejected = excluded.rows_rejected,
    duration_ms = excluded.duration_ms,
    latency_ms = excluded.latency_ms,
    attempts = ops.stream_batches.attempts + 1,
    committed_at = now()
returning attempts
"""

# Files of this micro-batch that an earlier attempt of the same batch already committed:
# on a replay the loader reports them as skipped, but they belong to this batch.
EARLIER_ATTEMPT = """
select source_path, load_id, rows_read, rows_loaded, rows_rejected
from ops.loads
where stream_query_id = %s and stream_batch_id = %s and status = 'loaded'
"""


@dataclass
class FileOutcome:
    path: str
    entity: str | None
    status: str  # loaded, skipped, rejected, failed
    rows_read: int = 0
    rows_loaded: int = 0
    rows_rejected: int = 0
    load_id: int | None = None
    error: str | None = None
    reason: str | None = None  # ops.loads.reason, or not_settled for a deferred file
    replayed: bool = False  # committed by an earlier attempt of this same batch


@dataclass
class BatchRecord:
    query_id: str
    batch_id: int
    started_at: datetime
    duration_ms: int
    latency_ms: int | None
    files: list[FileOutcome] = field(default_factory=list)

    def count(self, status: str) -> int:
        return sum(1 for f in self.files if f.status == status)

    @property
    def rows_read(self) -> int:
        return sum(f.rows_read for f in self.files if f.status == "loaded")

    @property
    def rows_loaded(self) -> int:
        return sum(f.rows_loaded for f in self.files if f.status == "loaded")

    @property
    def rows_rejected(self) -> int:
        return sum(f.rows_rejected for f in self.files if f.status == "loaded")

    def params(self) -> dict[str, Any]:
        return {
            "query_id": self.query_id,
            "batch_id": self.batch_id,
            "files": json.dumps([asdict(f) for f in self.files]),
            "files_total": len(self.files),
            "files_loaded": self.count("loaded"),
            "files_skipped": self.count("skipped"),
            "files_rejected": self.count("rejected"),
            "rows_read": self.rows_read,
            "rows_loaded": self.rows_loaded,
            "rows_rejected": self.rows_rejected,
            "started_at": self.started_at,
            "duration_ms": self.duration_ms,
            "latency_ms": self.latency_ms,
        }


def ensure_table(conn: Any) -> None:
    with conn.transaction():
        conn.execute(DDL)


def earlier_attempt(
    conn: Any, query_id: str, batch_id: int
) -> dict[str, tuple[int, int, int, int]]:
    """``source_path -> (load_id, rows_read, rows_loaded, rows_rejected)`` for the files an
    earlier attempt of this micro-batch committed."""
    rows = conn.execute(EARLIER_ATTEMPT, (query_id, batch_id)).fetchall()
    return {r[0]: (r[1], r[2], r[3], r[4]) for r in rows}


def record(conn: Any, rec: BatchRecord) -> int:
    """Upsert the micro-batch row; returns how many attempts it took."""
    with conn.transaction():
        (attempts,) = conn.execute(UPSERT, rec.params()).fetchone()
    return int(attempts)
