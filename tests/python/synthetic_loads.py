"""Bulk loads made in SQL through the loader's own publishing code, for tests and benchmarks
that need many load partitions quickly (``bench/bench_compact.py`` uses it too).

``bulk_load`` follows ``spark_loaders.ingest.file_load.load_file`` step by step with the
loader's functions: the entity's advisory lock, a load id from ``ops.load_id_seq``, the
staging tables (``create_staging``: ``bronze_loads.<entity>_l<N>`` with its CHECK), the rows,
a ``_parts`` marker, the prebuilt id btree (``prebuild_indexes``), then one transaction with
``publish_bulk`` (``_loaded_at``, BRIN, ANALYZE, ATTACH, rejects), the ledger entry and the id
high-water mark. Only parsing and validation are skipped: the rows come from a SQL query
instead of a CSV file through Spark, so partitions, indexes, statistics and ledger are what
``condo load`` leaves for a file of the same rows.
"""

from __future__ import annotations

import hashlib
import json

import psycopg

from spark_loaders.domain import BY_NAME
from spark_loaders.ingest import ledger
from spark_loaders.ingest.ddl import LOCK_NAMESPACE, entity_lock_key
from spark_loaders.ingest.sink_postgres import (
    Staging,
    create_staging,
    prebuild_indexes,
    publish_bulk,
)


def bulk_load(
    conn: psycopg.Connection, entity_name: str, rows_sql: str, *, source_file: str
) -> int:
    """Load the rows of ``rows_sql`` (the entity's columns, in order, then the 1-based
    source line) as one bulk load; returns its load id. ``conn`` must be in autocommit."""
    entity = BY_NAME[entity_name]
    key = (LOCK_NAMESPACE, entity_lock_key(entity_name))
    conn.execute("select pg_advisory_lock(%s, %s)", key)
    try:
        load_id = ledger.next_load_id(conn)
        started = ledger.db_now(conn)
        staging = Staging(entity, load_id, source_file)
        create_staging(conn, staging)
        names = [c.name for c in entity.columns]
        columns = ", ".join(names)
        cursor = conn.execute(
            f"insert into {staging.data} ({columns}, _source_line, _repaired) "
            f"select {', '.join(f'g.{n}' for n in names)}, g.line, false "
            f"from ({rows_sql}) as g({columns}, line)"
        )
        count = cursor.rowcount
        stats = conn.execute(
            f"select min({entity.id_column}), max({entity.id_column}), "
            f"min(_source_line), max(_source_line) from {staging.data}"
        ).fetchone()
        conn.execute(
            f"insert into {staging.parts} (part, stats) values (0, %s)",
            (json.dumps({"rows": count}),),
        )
        prebuild_indexes(conn, staging)
        entry = ledger.LedgerEntry(
            load_id=load_id,
            entity=entity_name,
            source_file=source_file,
            source_path=f"/synthetic/{source_file}",
            content_hash=hashlib.sha256(f"{entity_name}:{load_id}:{rows_sql}".encode()).hexdigest(),
            size_bytes=0,
            status="loaded",
            started_at=started,
            has_ids=True,
            rows_read=count,
            rows_loaded=count,
            id_min=stats[0],
            id_max=stats[1],
        )
        with conn.transaction():
            publish_bulk(conn, staging)
            ledger.insert(conn, entry)
            if stats[1] is not None:
                ledger.raise_high_water(conn, entity_name, stats[1])
        return load_id
    finally:
        conn.execute("select pg_advisory_unlock(%s, %s)", key)


def transactions_sql(
    first_id: int, n: int, *, units: int, people: int, days: int = 1826, recent: bool = False
) -> str:
    """``n`` transactions with ids ``first_id`` onwards, spread over ``units`` properties,
    ``people`` residents and ``days`` days from 2020-01-01 (``recent``: the last 30 of them);
    source lines 2 onwards."""
    day = f"{days - 30} + (i * 13) % 30" if recent else f"(i * 7) % {days}"
    return f"""
        select i::int, (1 + (i * 2654435761) % {units})::int, (1 + (i * 40503) % {people})::int,
               date '2020-01-01' + ({day})::int,
               ((i * 7919) % 100000000 / 100.0)::numeric(15,2),
               i - {first_id} + 2
        from generate_series({first_id}::bigint, {first_id + n - 1}) as i"""
