"""Bronze compaction: merge old load partitions of a bronze table into one partition.

Every bulk load becomes its own partition ``bronze_loads.<entity>_l<load_id>`` of the
``LIST (_load_id)``-partitioned ``bronze.<entity>``. Each partition has its own copy of the
id btree, so "every version of these ids" probes one index per partition, and after a
hundred loads that costs as much as a scan. Compaction copies the rows of old partitions,
unchanged (lineage included), into one new table ``bronze_loads.<entity>_m<compaction_id>``
and swaps it in for them: the new table is a partition ``FOR VALUES IN`` every load id of
the partitions it replaces.

Protocol (one database transaction, so a killed compaction changes nothing):

1. Take the entity's session advisory lock, the loader's (``ddl.entity_lock_key``): loads of
   that entity wait until the compaction ends, so no load can add, replace or remove rows of
   the partitions being merged. Drop merged tables a killed older version left unattached.
2. Choose the partitions: loader and merged partitions whose loads all finished before the
   cutoff (``ops.loads.finished_at``); at least two, else there is nothing to do.
3. Build, holding only ACCESS SHARE locks on the sources (readers never wait): create the
   table with ``CHECK (_load_id = any(<ids>))`` (which lets ATTACH skip its validation
   scan), copy the rows partition after partition in load order (so ``_loaded_at`` keeps
   growing with the physical order, as the BRIN wants), build the twins of the parent's
   indexes (adopted by ATTACH, not rebuilt), a BRIN on ``_load_id`` (so a later ``--force``
   reload deletes one merged load's rows without scanning the partition) and ANALYZE.
4. Swap, the only part readers can wait for: ``LOCK bronze.<entity>`` in ACCESS EXCLUSIVE
   mode with a short ``lock_timeout`` (retried from a savepoint, so a long reader does not
   make every later reader queue behind the compaction), drop the source partitions, attach
   the new table, write ``ops.compactions``, commit.

All SQL of compaction lives in this module (its rights: those of the loader on ``bronze``,
``bronze_loads`` and ``ops``, plus ``ops.compactions`` and ``ops.compaction_id_seq``).
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime

import psycopg

from spark_loaders.domain import BY_NAME, Entity
from spark_loaders.errors import CondoError
from spark_loaders.ingest.ddl import (
    BRONZE_INDEXES,
    DDL_LOCK,
    LOADS_SCHEMA,
    LOCK_NAMESPACE,
    ensure_schema,
    entity_lock_key,
)

APPLICATION_NAME = "condo-compact"
DEFAULT_OLDER_THAN_DAYS = 7.0
DEFAULT_MAX_ROWS = 50_000_000  # a merged partition this large is not merged again
DEFAULT_LOCK_TIMEOUT_S = 2.0
DEFAULT_LOCK_WAIT_S = 120.0

COMPACTION_DDL = """
create sequence if not exists ops.compaction_id_seq;
create table if not exists ops.compactions (
    compaction_id bigint primary key,
    entity text not null,
    status text not null check (status in ('compacted', 'failed')),
    partition_name text,
    source_partitions text[] not null default '{}',
    load_ids bigint[] not null default '{}',
    rows_merged bigint not null default 0,
    cutoff timestamptz not null,
    build_seconds double precision,
    lock_seconds double precision,
    error text,
    started_at timestamptz not null,
    finished_at timestamptz not null
);
comment on table ops.compactions is
    'One row per bronze compaction: which load partitions were merged into which (docs/contracts.md).';
"""


@dataclass(frozen=True)
class Partition:
    """An attached loader (``_l``) or merged (``_m``) partition of a bronze table."""

    name: str
    load_ids: tuple[int, ...]
    merged: bool
    newest_finished_at: datetime | None  # None: a load id without a ledger entry
    rows: int  # rows the ledger says its live loads hold


@dataclass
class CompactionResult:
    entity: str
    status: str  # compacted, nothing, failed, planned (dry run)
    compaction_id: int | None = None
    partition: str | None = None
    sources: list[str] = field(default_factory=list)
    load_ids: list[int] = field(default_factory=list)
    rows: int = 0
    build_seconds: float = 0.0
    lock_seconds: float = 0.0
    detail: str = ""


def partition_pattern(entity: str) -> re.Pattern[str]:
    return re.compile(rf"^{re.escape(entity)}_(l|m)([0-9]+)$")


def parse_list_bound(bound: str) -> tuple[int, ...]:
    """The integers of ``FOR VALUES IN (...)`` as ``pg_get_expr`` prints a list bound."""
    match = re.fullmatch(r"FOR VALUES IN \((.*)\)", bound.strip(), flags=re.S)
    if match is None:
        raise ValueError(f"not a list partition bound: {bound!r}")
    values = [v.strip().strip("'") for v in match.group(1).split(",")]
    return tuple(sorted(int(v) for v in values))


def plan(partitions: Sequence[Partition], cutoff: datetime, max_rows: int) -> list[Partition]:
    """The partitions to merge, in load order: every loader or merged partition whose loads
    all finished before ``cutoff`` (merged ones only while under ``max_rows``); empty when
    fewer than two qualify."""
    chosen = [
        p
        for p in partitions
        if p.newest_finished_at is not None
        and p.newest_finished_at < cutoff
        and (not p.merged or p.rows < max_rows)
    ]
    chosen.sort(key=lambda p: min(p.load_ids))
    return chosen if len(chosen) >= 2 else []


def ensure_compaction_schema(conn: psycopg.Connection) -> None:
    """Bronze and the ledger (the loader's ``ensure_schema``), then ``ops.compactions``.
    Idempotent; serialised on the DDL advisory lock when something is missing."""
    ensure_schema(conn)
    with conn.transaction():
        present = conn.execute(
            "select to_regclass('ops.compactions') is not null "
            "and to_regclass('ops.compaction_id_seq') is not null"
        ).fetchone()[0]
        if not present:
            conn.execute("select pg_advisory_xact_lock(%s, %s)", (LOCK_NAMESPACE, DDL_LOCK))
            conn.execute(COMPACTION_DDL)


def list_partitions(conn: psycopg.Connection, entity: str) -> list[Partition]:
    rows = conn.execute(
        """
        select c.relname, pg_get_expr(c.relpartbound, c.oid)
        from pg_inherits i
        join pg_class c on c.oid = i.inhrelid
        join pg_namespace n on n.oid = c.relnamespace
        where i.inhparent = %s::regclass and n.nspname = %s
        """,
        (f"bronze.{entity}", LOADS_SCHEMA),
    ).fetchall()
    pattern = partition_pattern(entity)
    found: list[tuple[str, tuple[int, ...], bool]] = []
    for name, bound in rows:
        match = pattern.match(name)
        if match is None or bound == "DEFAULT":
            continue
        found.append((name, parse_list_bound(bound), match.group(1) == "m"))
    ids = sorted({i for _, load_ids, _ in found for i in load_ids})
    ledger = {
        r[0]: (r[1], r[2], r[3])
        for r in conn.execute(
            "select load_id, status, rows_loaded, finished_at from ops.loads "
            "where load_id = any(%s)",
            (ids,),
        ).fetchall()
    }
    partitions = []
    for name, load_ids, merged in found:
        entries = [ledger.get(i) for i in load_ids]
        known = all(e is not None for e in entries)
        newest = max(e[2] for e in entries) if known and entries else None
        rows_live = sum(e[1] for e in entries if e is not None and e[0] == "loaded")
        partitions.append(Partition(name, load_ids, merged, newest, rows_live))
    return partitions


def drop_leftovers(conn: psycopg.Connection, entity: str) -> list[str]:
    """Merged tables that are not attached partitions (left by an interrupted compaction of
    an older design or by hand). Call only under the entity's advisory lock."""
    names = [
        r[0]
        for r in conn.execute(
            """
            select c.relname from pg_class c join pg_namespace n on n.oid = c.relnamespace
            where n.nspname = %s and c.relkind = 'r' and c.relname ~ %s
              and not c.relispartition
            """,
            (LOADS_SCHEMA, f"^{re.escape(entity)}_m[0-9]+$"),
        ).fetchall()
    ]
    for name in names:
        conn.execute(f'drop table if exists {LOADS_SCHEMA}."{name}"')
    return names


def parent_columns(conn: psycopg.Connection, entity: str) -> list[str]:
    return [
        r[0]
        for r in conn.execute(
            "select attname from pg_attribute where attrelid = %s::regclass "
            "and attnum > 0 and not attisdropped order by attnum",
            (f"bronze.{entity}",),
        ).fetchall()
    ]


def _id_array(load_ids: Sequence[int]) -> str:
    return "'{" + ",".join(str(int(i)) for i in load_ids) + "}'::bigint[]"


def build_merged(
    conn: psycopg.Connection, entity: Entity, table: str, sources: Sequence[Partition]
) -> tuple[list[int], int]:
    """Inside the compaction's transaction: create and fill the merged table with its
    indexes and statistics. Locks only the new table and (ACCESS SHARE) the sources."""
    load_ids = sorted({i for p in sources for i in p.load_ids})
    columns = ", ".join(parent_columns(conn, entity.name))
    qualified = f"{LOADS_SCHEMA}.{table}"
    conn.execute(
        f"create table {qualified} (like bronze.{entity.name}, "
        f"constraint {table}_load_ids check (_load_id = any ({_id_array(load_ids)})))"
    )
    rows = 0
    for source in sources:
        cursor = conn.execute(
            f"insert into {qualified} ({columns}) "
            f"select {columns} from {LOADS_SCHEMA}.{source.name}"
        )
        rows += cursor.rowcount
    for index in BRONZE_INDEXES:
        conn.execute(index.create(entity, LOADS_SCHEMA, table, parent=False))
    # Not on the parent: lets remove_load (a --force reload of a merged load) find that
    # load's rows, which the copy keeps contiguous, without scanning the partition.
    conn.execute(f"create index {table}_load_id_brin on {qualified} using brin (_load_id)")
    conn.execute(f"analyze {qualified}")
    return load_ids, rows


def swap(
    conn: psycopg.Connection,
    entity: str,
    table: str,
    sources: Sequence[Partition],
    load_ids: Sequence[int],
) -> None:
    """Inside the compaction's transaction, after the build: the short critical section."""
    conn.execute(f"lock table bronze.{entity} in access exclusive mode")
    for source in sources:
        conn.execute(f"drop table {LOADS_SCHEMA}.{source.name}")
    values = ", ".join(str(int(i)) for i in load_ids)
    conn.execute(
        f"alter table bronze.{entity} attach partition {LOADS_SCHEMA}.{table} "
        f"for values in ({values})"
    )


def _record(conn: psycopg.Connection, result: CompactionResult, cutoff: datetime, started):
    conn.execute(
        """
        insert into ops.compactions (
            compaction_id, entity, status, partition_name, source_partitions, load_ids,
            rows_merged, cutoff, build_seconds, lock_seconds, error, started_at, finished_at
        ) values (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, clock_timestamp())
        """,
        (
            result.compaction_id,
            result.entity,
            result.status,
            result.partition,
            result.sources,
            result.load_ids,
            result.rows,
            cutoff,
            round(result.build_seconds, 3),
            round(result.lock_seconds, 3) if result.status == "compacted" else None,
            result.detail if result.status == "failed" else None,
            started,
        ),
    )


@dataclass(frozen=True)
class Options:
    older_than_days: float = DEFAULT_OLDER_THAN_DAYS
    max_rows: int = DEFAULT_MAX_ROWS
    lock_timeout_s: float = DEFAULT_LOCK_TIMEOUT_S
    lock_wait_s: float = DEFAULT_LOCK_WAIT_S
    dry_run: bool = False


def compact_entity(
    conninfo: dict,
    entity_name: str,
    options: Options,
    on_wait: Callable[[str], None] | None = None,
) -> CompactionResult:
    """Compact one bronze table. Raises :class:`CondoError` on bad input; a failure after
    the plan is recorded in ``ops.compactions`` and returned with status ``failed``."""
    if entity_name not in BY_NAME:
        raise CondoError(f"unknown entity {entity_name!r}: use one of {', '.join(BY_NAME)}")
    if options.older_than_days < 0:
        raise CondoError("--older-than must be zero or more days")
    entity = BY_NAME[entity_name]
    result = CompactionResult(entity_name, "nothing")
    settings = {**conninfo, "application_name": APPLICATION_NAME}
    with psycopg.connect(**settings, autocommit=True) as conn:
        # A client killed mid-statement: the server notices within a second and rolls back.
        conn.execute("set client_connection_check_interval = '1s'")
        ensure_compaction_schema(conn)
        key = (LOCK_NAMESPACE, entity_lock_key(entity_name))
        if not conn.execute("select pg_try_advisory_lock(%s, %s)", key).fetchone()[0]:
            if on_wait is not None:
                on_wait(f"{entity_name}: waiting for the running load of {entity_name}")
            conn.execute("select pg_advisory_lock(%s, %s)", key)
        try:
            return _compact_locked(conn, entity, options, result)
        finally:
            if not conn.broken:
                conn.execute("select pg_advisory_unlock(%s, %s)", key)


def _compact_locked(
    conn: psycopg.Connection, entity: Entity, options: Options, result: CompactionResult
) -> CompactionResult:
    drop_leftovers(conn, entity.name)
    started, cutoff = conn.execute(
        "select clock_timestamp(), clock_timestamp() - make_interval(secs => %s)",
        (options.older_than_days * 86400,),
    ).fetchone()
    partitions = list_partitions(conn, entity.name)
    sources = plan(partitions, cutoff, options.max_rows)
    if not sources:
        old = sum(1 for p in partitions if p.newest_finished_at and p.newest_finished_at < cutoff)
        result.detail = (
            f"nothing to compact: {len(partitions)} load partitions, {old} older than "
            f"{options.older_than_days:g} days (at least 2 are needed)"
        )
        return result
    result.sources = [p.name for p in sources]
    result.load_ids = sorted({i for p in sources for i in p.load_ids})
    if options.dry_run:
        result.status = "planned"
        result.rows = sum(p.rows for p in sources)
        result.detail = f"would merge {len(sources)} partitions ({len(result.load_ids)} loads)"
        return result
    result.compaction_id = conn.execute("select nextval('ops.compaction_id_seq')").fetchone()[0]
    table = f"{entity.name}_m{result.compaction_id}"
    result.partition = f"{LOADS_SCHEMA}.{table}"
    clock = time.monotonic()
    try:
        with conn.transaction():
            _, result.rows = build_merged(conn, entity, table, sources)
            result.build_seconds = time.monotonic() - clock
            result.lock_seconds = _swap_with_retries(conn, entity.name, table, sources, options)
            result.status = "compacted"
            _record(conn, result, cutoff, started)
    except Exception as exc:  # recorded, then reported; the transaction rolled back
        if conn.closed or conn.broken:
            raise
        result.status = "failed"
        result.build_seconds = time.monotonic() - clock
        result.detail = str(exc).strip().splitlines()[0] if str(exc).strip() else repr(exc)
        _record(conn, result, cutoff, started)
    return result


class LockBusy(CondoError):
    exit_code = 1


def _swap_with_retries(
    conn: psycopg.Connection,
    entity: str,
    table: str,
    sources: Sequence[Partition],
    options: Options,
) -> float:
    """Run :func:`swap` under a short ``lock_timeout``; on a timeout, roll back to the
    savepoint (the build is kept) and try again until ``lock_wait_s`` is spent. Returns how
    long the exclusive lock was held before commit."""
    deadline = time.monotonic() + options.lock_wait_s
    pause = 0.2
    while True:
        try:
            with conn.transaction():  # a savepoint inside the compaction's transaction
                conn.execute(
                    "select set_config('lock_timeout', %s, true)",
                    (f"{int(options.lock_timeout_s * 1000)}ms",),
                )
                start = time.monotonic()
                swap(conn, entity, table, sources, sorted({i for p in sources for i in p.load_ids}))
                conn.execute("select set_config('lock_timeout', '0', true)")
                return time.monotonic() - start
        except psycopg.errors.LockNotAvailable as exc:
            if time.monotonic() + pause > deadline:
                raise LockBusy(
                    f"could not lock bronze.{entity} within {options.lock_wait_s:g}s "
                    "(long-running readers); nothing was changed, run it again later"
                ) from exc
            time.sleep(pause)
            pause = min(pause * 2, 5.0)


def compact_all(
    entities: Sequence[str] | None,
    options: Options,
    on_wait: Callable[[str], None] | None = None,
) -> list[CompactionResult]:
    """Compact the given bronze tables (default: all four, in dependency order) on the
    configured PostgreSQL."""
    from spark_loaders import connection
    from spark_loaders.domain import ENTITIES

    names = [e.name for e in ENTITIES if not entities or e.name in entities]
    for name in entities or ():
        if name not in BY_NAME:
            raise CondoError(f"unknown entity {name!r}: use one of {', '.join(BY_NAME)}")
    conninfo = connection.resolve("loader").psycopg_kwargs()  # bronze's owner
    try:
        return [compact_entity(conninfo, name, options, on_wait) for name in names]
    except psycopg.OperationalError as exc:
        raise CondoError(f"cannot connect to PostgreSQL: {str(exc).strip()}") from exc


def describe(result: CompactionResult) -> str:
    """One line per table for the command's output."""
    if result.status == "compacted":
        return (
            f"{result.entity}: merged {len(result.sources)} partitions "
            f"({len(result.load_ids)} loads, {result.rows:,} rows) into {result.partition} "
            f"in {result.build_seconds + result.lock_seconds:.1f}s; readers waited at most "
            f"{result.lock_seconds:.3f}s (compaction {result.compaction_id})"
        )
    if result.status == "planned":
        return f"{result.entity}: {result.detail}, about {result.rows:,} rows: " + ", ".join(
            result.sources
        )
    if result.status == "failed":
        return f"{result.entity}: FAILED, nothing changed: {result.detail}"
    return f"{result.entity}: {result.detail}"


def health(
    conn: psycopg.Connection, *, since_hours: float, warn_partitions: int | None = None
) -> list[tuple[str, str, str, float | None]]:
    """The compaction checks of ``condo monitor`` (name, level, message, value), on their
    own: per bronze table, ``warn`` at ``warn_partitions`` load partitions or more (time to
    compact) and when its latest compaction within ``since_hours`` failed. The facts come
    from ``monitor.gather_*`` and the judgement from ``monitor.compaction_checks``."""
    from spark_loaders import monitor

    limits = monitor.Thresholds(since_hours=since_hours)
    if warn_partitions is not None:
        limits = replace(limits, bronze_partitions_warn=warn_partitions)
    snapshot = monitor.Snapshot(
        taken_at=conn.execute("select now()").fetchone()[0],
        entities={},
        bronze_partitions=monitor.gather_bronze_partitions(conn),
        compactions=monitor.gather_compactions(conn),
    )
    return [
        (c.name, c.level, c.message, c.value) for c in monitor.compaction_checks(snapshot, limits)
    ]
