"""DDL of bronze, the quarantine and the load ledger. Idempotent and safe to run from several
processes at once, and while loads are running: see :func:`ensure_schema`."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import psycopg

from spark_loaders.domain import ENTITIES, ENTITY_ORDER, LINEAGE_COLUMNS, PARTITION_COLUMN, Entity
from spark_loaders.errors import CondoError

# Advisory lock keys: (namespace, key). The namespace spells "COND".
LOCK_NAMESPACE = 0x434F4E44
DDL_LOCK = 1


def entity_lock_key(entity: str) -> int:
    return 100 + ENTITY_ORDER.index(entity)


LOADS_SCHEMA = "bronze_loads"  # per-load partitions and in-flight staging tables


@dataclass(frozen=True)
class BronzeIndex:
    """An index of every bronze entity table, declared on the partitioned parent (so every
    partition has it) and prebuilt on a bulk load's staging table so that ATTACH PARTITION
    adopts it instead of building it."""

    suffix: str
    method: str
    column: str | None  # None: the entity's id column
    options: str = ""

    def name(self, entity: Entity, table: str | None = None) -> str:
        """``<entity>_<suffix>`` on the parent, ``<table>_<suffix>`` on a staging table."""
        return f"{table or entity.name}_{self.suffix}"

    def key(self, entity: Entity) -> str:
        return self.column or entity.id_column

    def create(self, entity: Entity, schema: str, table: str, *, parent: bool) -> str:
        name = self.name(entity, None if parent else table)
        with_options = f" with ({self.options})" if self.options else ""
        return (
            f"create index if not exists {name} on {schema}.{table} "
            f"using {self.method} ({self.key(entity)}){with_options}"
        )


# "Rows loaded since T" (dbt's incremental models and source freshness): a BRIN, because
# _loaded_at only grows with the physical order of every partition. autosummarize lets
# autovacuum summarise the default partition's new page ranges as micro-batches append them.
LOADED_AT_BRIN = BronzeIndex("loaded_at_brin", "brin", "_loaded_at", "autosummarize = on")
# "Every version of these ids" (dbt's incremental models): a plain btree (ids repeat).
ID_BTREE = BronzeIndex("id_idx", "btree", None)
BRONZE_INDEXES: tuple[BronzeIndex, ...] = (LOADED_AT_BRIN, ID_BTREE)


def bronze_table_ddl(entity: Entity) -> str:
    columns = [f"{c.name} {c.pg_type} not null" for c in entity.columns]
    columns += [
        f"{c.name} {c.pg_type} not null" + (f" default {c.pg_default}" if c.pg_default else "")
        for c in LINEAGE_COLUMNS
    ]
    body = ",\n    ".join(columns)
    return f"""
create table if not exists bronze.{entity.name} (
    {body}
) partition by list ({PARTITION_COLUMN});
create table if not exists {LOADS_SCHEMA}.{entity.name}_default
    partition of bronze.{entity.name} default;
comment on table bronze.{entity.name} is
    'Raw {entity.name} rows that passed validation, one partition per bulk load (see docs/ingestion.md).';
"""


def bronze_index_ddl(entity: Entity) -> list[str]:
    """The parent-level (partitioned) indexes; creating one builds it on every partition."""
    return [index.create(entity, "bronze", entity.name, parent=True) for index in BRONZE_INDEXES]


def create_schemas_sql(*names: str) -> str:
    """Create the schemas that are missing. Unlike ``create schema if not exists`` this
    needs no CREATE right on the database when they exist, which is how a least-privilege
    loader finds them (``condo db roles`` creates them, owned by the loader)."""
    body = "".join(
        f"    if to_regnamespace('{name}') is null then create schema {name}; end if;\n"
        for name in names
    )
    return f"do $schemas$ begin\n{body}end $schemas$;\n"


COMMON_DDL = (
    create_schemas_sql("bronze", LOADS_SCHEMA, "ops")
    + """
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
    rejects_by_reason jsonb not null default '{}',
    id_min bigint,
    id_max bigint,
    warnings text[] not null default '{}',
    error text,
    mode text not null default 'batch' check (mode in ('batch', 'stream')),
    stream_query_id text,
    stream_batch_id bigint,
    replaced_by bigint,
    reason text,
    duplicate_of bigint,
    parser text,
    started_at timestamptz not null,
    finished_at timestamptz not null,
    check (rows_read = rows_loaded + rows_rejected)
);
alter table ops.loads add column if not exists reason text;
alter table ops.loads add column if not exists duplicate_of bigint;
alter table ops.loads add column if not exists parser text;
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
)


def expected_relations() -> list[str]:
    """Every relation :func:`ensure_schema` creates, schema-qualified."""
    names = [
        "ops.load_id_seq",
        "ops.loads",
        "ops.loads_one_loaded_per_content",
        "ops.loads_by_file",
        "ops.id_watermarks",
        "bronze.rejected_rows",
        "bronze.rejected_rows_by_load",
    ]
    for entity in ENTITIES:
        names += [f"bronze.{entity.name}", f"{LOADS_SCHEMA}.{entity.name}_default"]
        names += [f"bronze.{index.name(entity)}" for index in BRONZE_INDEXES]
    return names


# Columns added to ops.loads after its first release; a database without them is upgraded.
LATER_LOADS_COLUMNS = ("reason", "duplicate_of")


def _schema_complete(conn: psycopg.Connection) -> bool:
    """True when every relation exists, the bronze tables are partitioned and ``ops.loads``
    has every column. Reads only the catalog (``to_regclass`` takes no lock), so it never
    waits for a running load."""
    columns = conn.execute(
        "select count(*) from pg_attribute where attrelid = to_regclass('ops.loads') "
        "and attname = any(%s) and not attisdropped",
        (list(LATER_LOADS_COLUMNS),),
    ).fetchone()[0]
    if columns != len(LATER_LOADS_COLUMNS):
        return False
    rows = conn.execute(
        "select r.name, c.relkind from unnest(%s::text[]) as r(name) "
        "left join pg_class c on c.oid = to_regclass(r.name)",
        (expected_relations(),),
    ).fetchall()
    bronze = {f"bronze.{e.name}" for e in ENTITIES}
    return all(kind is not None and (name not in bronze or kind == "p") for name, kind in rows)


def ensure_schema(conn: psycopg.Connection, on_wait: Callable[[str], None] | None = None) -> None:
    """Create bronze (with its indexes), ``bronze.rejected_rows`` and the ledger
    (``ops.loads``, ``ops.load_id_seq``, ``ops.id_watermarks``) where missing. Idempotent.

    When everything exists (the usual case) it only reads the catalog, so it never waits for
    loads in progress. Otherwise (a new database, or one created by an older loader that
    lacks the bronze indexes) it serialises on the DDL advisory lock and then takes every
    entity's advisory lock, i.e. waits until no load is running: a load's final transaction
    locks its bronze table and then ``ops.loads``, and creating an index on that table while
    holding a lock on ``ops.loads`` could otherwise deadlock with it. Building the indexes on
    existing partitions costs 5-6 s per 10M rows (more with many partitions), once.

    ``on_wait`` gets one line for each running load it has to wait for."""
    with conn.transaction():
        if not _schema_complete(conn):
            conn.execute("select pg_advisory_xact_lock(%s, %s)", (LOCK_NAMESPACE, DDL_LOCK))
            for entity in ENTITIES:
                key = (LOCK_NAMESPACE, entity_lock_key(entity.name))
                free = conn.execute("select pg_try_advisory_xact_lock(%s, %s)", key).fetchone()
                if not free[0]:
                    if on_wait is not None:
                        on_wait(
                            f"updating the bronze schema: waiting for the running load of "
                            f"{entity.name} to finish"
                        )
                    conn.execute("select pg_advisory_xact_lock(%s, %s)", key)
            _create_all(conn)
        conn.execute(
            "insert into ops.id_watermarks (entity) select unnest(%s::text[]) "
            "on conflict (entity) do nothing",
            (list(ENTITY_ORDER),),
        )


def _create_all(conn: psycopg.Connection) -> None:
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
        for statement in bronze_index_ddl(entity):
            conn.execute(statement)
