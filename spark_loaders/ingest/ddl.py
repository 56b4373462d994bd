"""DDL of bronze, the quarantine and the load ledger. Idempotent and safe to run from several
processes at once: it runs under a transaction-scoped advisory lock."""

from __future__ import annotations

import psycopg

from spark_loaders.errors import CondoError
from spark_loaders.ingest.entities import ENTITIES, Entity

# Advisory lock keys: (namespace, key). The namespace spells "COND".
LOCK_NAMESPACE = 0x434F4E44
DDL_LOCK = 1


def entity_lock_key(entity: str) -> int:
    return 100 + [e.name for e in ENTITIES].index(entity)


LOADS_SCHEMA = "bronze_loads"  # per-load partitions and in-flight staging tables


def bronze_table_ddl(entity: Entity) -> str:
    columns = ",\n    ".join(f"{c.name} {c.pg_type} not null" for c in entity.columns)
    return f"""
create table if not exists bronze.{entity.name} (
    {columns},
    _source_file text not null,
    _source_line bigint not null,
    _load_id bigint not null,
    _loaded_at timestamptz not null default now(),
    _repaired boolean not null default false
) partition by list (_load_id);
create table if not exists {LOADS_SCHEMA}.{entity.name}_default
    partition of bronze.{entity.name} default;
comment on table bronze.{entity.name} is
    'Raw {entity.name} rows that passed validation, one partition per bulk load (see docs/ingestion.md).';
"""


COMMON_DDL = f"""
create schema if not exists bronze;
create schema if not exists {LOADS_SCHEMA};
create schema if not exists ops;
create sequence if not exists ops.load_id_seq;
create table if not exists ops.loads (
    load_id bigint primary key,
    entity text not null,
    source_file text not null,
    source_path text not null,
    content_hash text not null,
    size_bytes bigint not null,
    status text not null check (status in ('loaded', 'rejected', 'failed', 'skipped', 'replaced')),
    has_ids boolean,
    rows_read bigint not null default 0,
    rows_loaded bigint not null default 0,
    rows_rejected bigint not null default 0,
    rows_repaired bigint not null default 0,
    rejects_by_reason jsonb not null default '{{}}',
    id_min bigint,
    id_max bigint,
    warnings text[] not null default '{{}}',
    error text,
    mode text not null default 'batch' check (mode in ('batch', 'stream')),
    stream_query_id text,
    stream_batch_id bigint,
    replaced_by bigint,
    started_at timestamptz not null,
    finished_at timestamptz not null,
    check (rows_read = rows_loaded + rows_rejected)
);
create unique index if not exists loads_one_loaded_per_content
    on ops.loads (entity, content_hash) where status = 'loaded';
create index if not exists loads_by_file on ops.loads (source_file, started_at);
create table if not exists ops.id_watermarks (
    entity text primary key,
    high_water bigint not null default 0
);
create table if not exists bronze.rejected_rows (
    entity text not null,
    source_file text not null,
    source_line bigint not null,
    raw_line text not null,
    reasons text[] not null,
    load_id bigint not null,
    rejected_at timestamptz not null default now()
);
create index if not exists rejected_rows_by_load on bronze.rejected_rows (load_id);
"""


def ensure_schema(conn: psycopg.Connection) -> None:
    """Create bronze, ``bronze.rejected_rows``, the ledger (``ops.loads``, ``ops.load_id_seq``,
    ``ops.id_watermarks``) if missing. Idempotent; concurrent callers serialise on an
    advisory lock."""
    with conn.transaction():
        conn.execute("select pg_advisory_xact_lock(%s, %s)", (LOCK_NAMESPACE, DDL_LOCK))
        conn.execute(COMMON_DDL)
        for entity in ENTITIES:
            conn.execute(bronze_table_ddl(entity))
            kind = conn.execute(
                "select c.relkind from pg_class c join pg_namespace n on n.oid = c.relnamespace "
                "where n.nspname = 'bronze' and c.relname = %s",
                (entity.name,),
            ).fetchone()
            if kind and kind[0] != "p":
                raise CondoError(
                    f"bronze.{entity.name} exists but is not the loader's partitioned table; "
                    "drop it (it is rebuilt by `condo load`) or use a fresh database"
                )
        conn.execute(
            "insert into ops.id_watermarks (entity) select unnest(%s::text[]) "
            "on conflict (entity) do nothing",
            ([e.name for e in ENTITIES],),
        )
