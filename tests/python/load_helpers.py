"""Helpers for the loader tests (test_load_*.py): write small CSV files, run loads, query."""

from __future__ import annotations

from pathlib import Path

import psycopg

from spark_loaders.connection import ConnectionInfo
from spark_loaders.ingest.api import ingest_files
from spark_loaders.ingest.report import IngestReport


def write(path: Path, text: str | bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(text, str):
        text = text.encode("utf-8")
    path.write_bytes(text)
    return path


def load(spark, *paths: Path | str, **kwargs) -> IngestReport:
    kwargs.setdefault("progress", False)
    return ingest_files(spark, [str(p) for p in paths], **kwargs)


def rows(db: ConnectionInfo, sql: str, params: tuple = ()) -> list[tuple]:
    with psycopg.connect(**db.psycopg_kwargs()) as conn:
        return conn.execute(sql, params).fetchall()


def scalar(db: ConnectionInfo, sql: str, params: tuple = ()):
    return rows(db, sql, params)[0][0]


def leftover_tables(db: ConnectionInfo) -> list[str]:
    """Tables in bronze_loads that are neither attached partitions nor default partitions."""
    return [
        r[0]
        for r in rows(
            db,
            "select c.relname from pg_class c join pg_namespace n on n.oid = c.relnamespace "
            "where n.nspname = 'bronze_loads' and c.relkind = 'r' and not c.relispartition",
        )
    ]
