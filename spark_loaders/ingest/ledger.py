"""The load ledger (``ops.loads``) and the id high-water marks (``ops.id_watermarks``)."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime

import psycopg


@dataclass
class LedgerEntry:
    load_id: int
    entity: str
    source_file: str
    source_path: str
    content_hash: str
    size_bytes: int
    status: str
    started_at: datetime
    has_ids: bool | None = None
    rows_read: int = 0
    rows_loaded: int = 0
    rows_rejected: int = 0
    rows_repaired: int = 0
    rejects_by_reason: dict[str, int] = field(default_factory=dict)
    id_min: int | None = None
    id_max: int | None = None
    warnings: list[str] = field(default_factory=list)
    error: str | None = None
    mode: str = "batch"
    stream_query_id: str | None = None
    stream_batch_id: int | None = None
    reason: str | None = None  # a short code: changed_during_load, symlink, unreadable, ...
    duplicate_of: int | None = None  # for a skip: the load whose records these are
    parser: str | None = None  # how the rows were read (report.FileResult.parser)


@dataclass(frozen=True)
class PreviousLoad:
    load_id: int
    has_ids: bool | None
    id_min: int | None
    id_max: int | None


def next_load_id(conn: psycopg.Connection) -> int:
    return conn.execute("select nextval('ops.load_id_seq')").fetchone()[0]


def db_now(conn: psycopg.Connection) -> datetime:
    return conn.execute("select clock_timestamp()").fetchone()[0]


def find_loaded(
    conn: psycopg.Connection, entity: str, content_hash: str, bytes_hash: str | None = None
) -> PreviousLoad | None:
    """The loaded entry with these records. Ledgers written before the content identity was
    computed on records hold the SHA-256 of the bytes, so that hash matches too (a file that
    lacked its final newline or had CRLF then got a different hash)."""
    hashes = [content_hash] + ([bytes_hash] if bytes_hash and bytes_hash != content_hash else [])
    row = conn.execute(
        "select load_id, has_ids, id_min, id_max from ops.loads "
        "where entity = %s and content_hash = any(%s) and status = 'loaded' "
        "order by load_id desc limit 1",
        (entity, hashes),
    ).fetchone()
    return PreviousLoad(*row) if row else None


def insert(conn: psycopg.Connection, entry: LedgerEntry) -> None:
    conn.execute(
        """
        insert into ops.loads (
            load_id, entity, source_file, source_path, content_hash, size_bytes, status,
            has_ids, rows_read, rows_loaded, rows_rejected, rows_repaired, rejects_by_reason,
            id_min, id_max, warnings, error, mode, stream_query_id, stream_batch_id,
            reason, duplicate_of, parser, started_at, finished_at
        ) values (
            %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s,
            %s, %s, %s, %s, clock_timestamp()
        )
        """,
        (
            entry.load_id,
            entry.entity,
            entry.source_file,
            entry.source_path,
            entry.content_hash,
            entry.size_bytes,
            entry.status,
            entry.has_ids,
            entry.rows_read,
            entry.rows_loaded,
            entry.rows_rejected,
            entry.rows_repaired,
            json.dumps({k: v for k, v in entry.rejects_by_reason.items() if v}),
            entry.id_min,
            entry.id_max,
            entry.warnings,
            entry.error,
            entry.mode,
            entry.stream_query_id,
            entry.stream_batch_id,
            entry.reason,
            entry.duplicate_of,
            entry.parser,
            entry.started_at,
        ),
    )


def mark_replaced(conn: psycopg.Connection, old_load_id: int, new_load_id: int) -> None:
    conn.execute(
        "update ops.loads set status = 'replaced', replaced_by = %s where load_id = %s",
        (new_load_id, old_load_id),
    )


def high_water(conn: psycopg.Connection, entity: str) -> int:
    return conn.execute(
        "select high_water from ops.id_watermarks where entity = %s", (entity,)
    ).fetchone()[0]


def raise_high_water(conn: psycopg.Connection, entity: str, value: int) -> None:
    conn.execute(
        "update ops.id_watermarks set high_water = greatest(high_water, %s) where entity = %s",
        (value, entity),
    )
