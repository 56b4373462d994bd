"""Writing a checked file to PostgreSQL so that it becomes visible all at once.

Bulk path (large files): the writers (Spark tasks; on the vectorised path, threads of the
loader in local mode) COPY, in parallel, into a new table
``bronze_loads.<entity>_l<load_id>`` that has ``CHECK (_load_id = <load_id>)``; each writer
commits its COPY together with a marker row, so a retried task does not write twice. The
btree on the id column is then built on that table, outside the final transaction. The final
transaction adds ``_loaded_at`` (metadata only), builds the BRIN on it (one scan of the
load's own table) and ANALYZEs that table, before any lock that readers of bronze wait for,
and attaches the table as the load's partition of ``bronze.<entity>``: the CHECK spares
PostgreSQL the validation scan and the matching indexes are adopted, not rebuilt. It then
moves the rejects and writes the ledger.

Direct path (small files, micro-batches): the rows come to the driver and are COPYed inside
the final transaction into the default partition, which avoids one partition per tiny file.

Leftover staging tables of a killed run are dropped the next time the entity is loaded,
under the entity's advisory lock, which also guarantees no live loader owns them.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import psycopg
import pyarrow as pa
from psycopg import sql
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import types as T

from spark_loaders.domain import REASONS, Entity
from spark_loaders.ingest.arrow_map import map_in_arrow
from spark_loaders.ingest.copy_binary import SIGNATURE, TRAILER
from spark_loaders.ingest.copy_stream import Stats, batch_stats, copy_batches
from spark_loaders.ingest.ddl import ID_BTREE, LOADED_AT_BRIN, LOADS_SCHEMA, BronzeIndex
from spark_loaders.ingest.records_arrow import Chunk, Layout, check_block, read_blocks
from spark_loaders.ingest.validate import REJECT_COPY_COLUMNS, row_copy_columns
from spark_loaders.spark_session import local_cores

STATS_SCHEMA = T.StructType(
    [
        T.StructField("part", T.IntegerType(), False),
        T.StructField("rows", T.LongType(), False),
        T.StructField("loaded", T.LongType(), False),
        T.StructField("rejected", T.LongType(), False),
        T.StructField("repaired", T.LongType(), False),
        T.StructField("id_min", T.LongType(), True),
        T.StructField("id_max", T.LongType(), True),
        T.StructField("max_valid_id", T.LongType(), True),
        T.StructField("line_min", T.LongType(), True),
        T.StructField("line_max", T.LongType(), True),
        T.StructField("line_sum", T.LongType(), False),
        *[T.StructField(f"r_{r}", T.LongType(), False) for r in REASONS],
    ]
)


@dataclass(frozen=True)
class Staging:
    entity: Entity
    load_id: int
    source_file: str  # the file's name, the _source_file of every row of the load

    @property
    def data(self) -> str:
        return f"{LOADS_SCHEMA}.{self.table_name}"

    @property
    def table_name(self) -> str:
        return f"{self.entity.name}_l{self.load_id}"

    def create_index(self, index: BronzeIndex) -> str:
        """The staging twin of a bronze parent index, which ATTACH PARTITION adopts."""
        return index.create(self.entity, LOADS_SCHEMA, self.table_name, parent=False)

    @property
    def rejects(self) -> str:
        return f"{self.data}_rej"

    @property
    def parts(self) -> str:
        return f"{self.data}_parts"

    def bulk_row_copy(self, *, binary: bool = False) -> str:
        columns = ", ".join(row_copy_columns(self.entity, lineage=False))
        kind = "binary" if binary else "csv"
        return f"copy {self.data} ({columns}) from stdin (format {kind})"

    def direct_row_copy(self) -> str:
        columns = ", ".join(row_copy_columns(self.entity, lineage=True))
        return f"copy bronze.{self.entity.name} ({columns}) from stdin (format csv)"

    def reject_copy(self, table: str) -> str:
        return f"copy {table} ({', '.join(REJECT_COPY_COLUMNS)}) from stdin (format csv)"


def drop_leftovers(conn: psycopg.Connection, entity: str) -> list[str]:
    """Drop staging tables of this entity that are not attached partitions. Call only while
    holding the entity's advisory lock: then no live loader owns any of them."""
    pattern = f"^{re.escape(entity)}_l[0-9]+(_rej|_parts)?$"
    rows = conn.execute(
        """
        select c.relname from pg_class c join pg_namespace n on n.oid = c.relnamespace
        where n.nspname = %s and c.relkind = 'r' and c.relname ~ %s and not c.relispartition
        """,
        (LOADS_SCHEMA, pattern),
    ).fetchall()
    names = [r[0] for r in rows]
    for name in names:
        conn.execute(f'drop table if exists {LOADS_SCHEMA}."{name}"')
    return names


def create_staging(conn: psycopg.Connection, staging: Staging) -> None:
    """The load's tables. The rows' lines carry neither the load id nor the file name, the
    same for every row: ``_load_id`` is a default whose CHECK (which ATTACH PARTITION needs
    to skip its validation scan) exists before the first row, so each row is checked as it
    is written and the table is never scanned for it; ``_source_file`` is added at publish
    with a default, a catalogue change that writes no row (as ``_loaded_at`` is)."""
    columns = ",\n".join(f"{c.name} {c.pg_type} not null" for c in staging.entity.columns)
    load_id = staging.load_id
    conn.execute(
        f"""
        create table {staging.data} (
            {columns},
            _source_line bigint not null,
            _load_id bigint not null default {load_id} check (_load_id = {load_id}),
            _repaired boolean not null
        );
        create table {staging.rejects} (
            source_line bigint not null, raw_line text not null, reasons text[] not null,
            entity text not null, source_file text not null, load_id bigint not null
        );
        create table {staging.parts} (part int primary key, stats jsonb not null);
        """
    )


def _write_part(
    conninfo: dict,
    staging: Staging,
    part: int,
    batches: Iterator[pa.RecordBatch],
    drain: Callable[[], None],
    *,
    binary: bool = False,
) -> Stats:
    """One task's share: COPY its checked batches into the staging tables and commit them
    with the task's marker row. A retried task whose first attempt committed writes nothing
    again (``drain`` consumes its input unread) and reports what that attempt wrote.
    ``binary``: the batches' ``_ok_line`` holds binary COPY rows, not CSV lines."""
    row_copy = staging.bulk_row_copy(binary=binary)
    framing = {"header": SIGNATURE, "trailer": TRAILER} if binary else {}
    reject_copy = staging.reject_copy(staging.rejects)
    parts = staging.parts
    with psycopg.connect(**conninfo) as conn, conn.transaction():
        claimed = conn.execute(
            f"insert into {parts} (part, stats) values (%s, '{{}}') "
            "on conflict (part) do nothing returning part",
            (part,),
        ).fetchone()
        if claimed is None:
            drain()
            row = conn.execute(f"select stats from {parts} where part = %s", (part,))
            return Stats.from_row(row.fetchone()[0])
        stats = Stats()
        rejects: list[pa.Array] = []

        def rows() -> Iterator[pa.Array]:
            for batch in batches:
                stats.add(batch_stats(batch))
                reject_lines = batch.column("_rej_line")
                if reject_lines.null_count < len(reject_lines):
                    rejects.append(reject_lines)
                yield batch.column("_ok_line")

        cursor = conn.cursor()
        copy_batches(cursor, row_copy, rows(), **framing)
        if rejects:
            copy_batches(cursor, reject_copy, rejects)
        conn.execute(
            f"update {parts} set stats = %s where part = %s",
            (json.dumps(stats.as_row()), part),
        )
    return stats


def _stats_batch(part: int, stats: Stats) -> pa.RecordBatch:
    return pa.RecordBatch.from_pylist([{"part": part, **stats.as_row()}], schema=STATS_ARROW_SCHEMA)


def _task_writer(conninfo: dict, staging: Staging):
    """The Spark path: the tasks get checked batches (validate.copy_lines) from the JVM."""

    def write(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        from pyspark import TaskContext

        part = TaskContext.get().partitionId()

        def drain() -> None:
            for _ in batches:
                pass

        yield _stats_batch(part, _write_part(conninfo, staging, part, batches, drain))

    return write


STATS_ARROW_SCHEMA = pa.schema(
    [
        pa.field(f.name, pa.int32() if f.name == "part" else pa.int64(), f.nullable)
        for f in STATS_SCHEMA.fields
    ]
)


ARROW_BATCH_ROWS = 100_000  # larger Arrow batches: fewer Python round trips per task


@contextmanager
def arrow_batch_rows(spark, rows: int):
    key = "spark.sql.execution.arrow.maxRecordsPerBatch"
    previous = spark.conf.get(key)
    spark.conf.set(key, str(rows))
    try:
        yield
    finally:
        spark.conf.set(key, previous)


def write_bulk(
    conn: psycopg.Connection, conninfo: dict, staging: Staging, lines: DataFrame
) -> Stats:
    """Run the parallel COPY into the staging tables; returns the committed totals."""
    create_staging(conn, staging)
    with arrow_batch_rows(lines.sparkSession, ARROW_BATCH_ROWS):
        results = map_in_arrow(lines, _task_writer(conninfo, staging), STATS_SCHEMA).collect()
    return _committed_totals(conn, staging, [Stats.from_row(r.asDict()) for r in results])


def _committed_totals(conn: psycopg.Connection, staging: Staging, results: list[Stats]) -> Stats:
    """Sum the tasks' reports and check them against the committed marker rows. The caller
    then builds the id btree (:func:`prebuild_indexes`)."""
    total = Stats()
    for stats in results:
        total.add(stats)
    committed = conn.execute(
        f"select count(*), coalesce(sum((stats->>'rows')::bigint), 0) from {staging.parts}"
    ).fetchone()
    if committed[0] != len(results) or committed[1] != total.rows:
        raise RuntimeError(
            f"staging for load {staging.load_id} is inconsistent: {committed[0]} parts / "
            f"{committed[1]} rows committed, {len(results)} parts / {total.rows} rows reported"
        )
    return total


CHUNK_SCHEMA = T.StructType(
    [
        T.StructField("start", T.LongType(), False),
        T.StructField("end", T.LongType(), False),
        T.StructField("first_line", T.LongType(), False),
    ]
)
BLOCK_BYTES = 8 << 20  # lines a task checks at a time: bounds its memory (~100 MB)


def _checked_blocks(path: str, chunks: list[Chunk], layout: Layout) -> Iterator[pa.RecordBatch]:
    for chunk in chunks:
        for first_line, block in read_blocks(path, chunk, BLOCK_BYTES):
            yield check_block(block, first_line, layout)


def _chunk_writer(conninfo: dict, staging: Staging, path: str, layout: Layout):
    """The vectorised path on a cluster: each Spark task reads its byte ranges of the file
    itself and checks them with pyarrow kernels; no row crosses the JVM."""

    def write(chunks: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        from pyspark import TaskContext

        part = TaskContext.get().partitionId()
        mine = [Chunk(**row) for batch in chunks for row in batch.to_pylist()]
        batches = _checked_blocks(path, mine, layout)
        stats = _write_part(conninfo, staging, part, batches, lambda: None, binary=layout.binary)
        yield _stats_batch(part, stats)

    return write


def write_bulk_vectorised(
    conn: psycopg.Connection,
    conninfo: dict,
    staging: Staging,
    spark: SparkSession,
    path: Path,
    chunks: list[Chunk],
    layout: Layout,
) -> Stats:
    """Like :func:`write_bulk`, one writer per chunk of the file. In local mode the writers
    are threads of this process (Arrow's kernels and the COPY release the GIL), so the load
    needs no Spark job, nor a SparkSession at all if none was started; on a cluster they are
    Spark tasks on the executors, which must see the file at the same path."""
    create_staging(conn, staging)
    if local_cores(spark) is not None:
        results = _write_in_threads(conninfo, staging, str(path), chunks, layout)
        return _committed_totals(conn, staging, results)
    rows = [(c.start, c.end, c.first_line) for c in chunks]
    slices = max(1, len(rows))
    plan = spark.createDataFrame(spark.sparkContext.parallelize(rows, slices), CHUNK_SCHEMA)
    writer = _chunk_writer(conninfo, staging, str(path), layout)
    reports = map_in_arrow(plan, writer, STATS_SCHEMA).collect()
    return _committed_totals(conn, staging, [Stats.from_row(r.asDict()) for r in reports])


def _write_in_threads(
    conninfo: dict, staging: Staging, path: str, chunks: list[Chunk], layout: Layout
) -> list[Stats]:
    with ThreadPoolExecutor(max_workers=max(1, len(chunks)), thread_name_prefix="copy") as pool:
        futures = [
            pool.submit(
                _write_part,
                conninfo,
                staging,
                part,
                _checked_blocks(path, [chunk], layout),
                lambda: None,
                binary=layout.binary,
            )
            for part, chunk in enumerate(chunks)
        ]
        return [future.result() for future in futures]


def prebuild_indexes(conn: psycopg.Connection, staging: Staging) -> None:
    """Before the final transaction: the btree on the id column (3-5 s per 10M rows),
    which ATTACH PARTITION will adopt instead of building it under its locks."""
    conn.execute(staging.create_index(ID_BTREE))


def prebuild_indexes_while(
    conn: psycopg.Connection, staging: Staging, other: Callable[[], None]
) -> None:
    """:func:`prebuild_indexes`, with ``other`` (client work, such as re-reading the file)
    running meanwhile in a thread: the server builds the btree while the client is idle.
    An error of ``other`` is raised after the build, one of the build first."""
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="beside-btree") as pool:
        pending = pool.submit(other)
        prebuild_indexes(conn, staging)
        pending.result()


def prepare_attach(conn: psycopg.Connection, staging: Staging) -> None:
    """In the final transaction, once ``_loaded_at`` exists and before ATTACH: the BRIN on it
    (one scan of the load's table, about 0.1 s per million rows) and the table's statistics
    (a 30k-row sample, about 0.3 s at 10M rows). Both hold locks on the load's own table only,
    not on the default partition, whose ACCESS EXCLUSIVE lock ATTACH takes and every reader of
    bronze waits for. Without statistics on the new ``_loaded_at`` the planner would guess a
    third of the partition matches ``_loaded_at > T`` and scan all of it."""
    conn.execute(staging.create_index(LOADED_AT_BRIN))
    conn.execute(f"analyze {staging.data}")


def publish_bulk(conn: psycopg.Connection, staging: Staging) -> None:
    """Inside the final transaction, before anything else in it: make the staged rows and
    rejects part of bronze."""
    entity = staging.entity.name
    # Both columns are stored once, in the catalogue, for every row already in the table.
    conn.execute(
        sql.SQL(
            "alter table {table} add column _source_file text not null default {file}, "
            "add column _loaded_at timestamptz not null default now()"
        ).format(table=sql.SQL(staging.data), file=sql.Literal(staging.source_file))
    )
    conn.execute(
        f"alter table {staging.data} alter column _source_file drop default, "
        "alter column _loaded_at drop default"
    )
    prepare_attach(conn, staging)
    conn.execute(
        f"alter table bronze.{entity} attach partition {staging.data} "
        f"for values in ({staging.load_id})"
    )
    columns = ", ".join(REJECT_COPY_COLUMNS)
    conn.execute(
        f"insert into bronze.rejected_rows ({columns}) select {columns} from {staging.rejects}"
    )
    conn.execute(f"drop table {staging.rejects}, {staging.parts}")


def collect_direct(lines: DataFrame) -> tuple[pa.Table, Stats]:
    table = lines.toArrow()
    stats = Stats()
    for batch in table.to_batches():
        stats.add(batch_stats(batch))
    return table, stats


def publish_direct(conn: psycopg.Connection, staging: Staging, table: pa.Table) -> None:
    """Inside the final transaction: COPY the rows (default partition) and rejects."""
    cursor = conn.cursor()
    ok = table.column("_ok_line")
    if ok.null_count < len(ok):
        copy_batches(cursor, staging.direct_row_copy(), ok.chunks)
    rejects = table.column("_rej_line")
    if rejects.null_count < len(rejects):
        copy_batches(cursor, staging.reject_copy("bronze.rejected_rows"), rejects.chunks)


def remove_load(conn: psycopg.Connection, entity: str, load_id: int) -> None:
    """Inside the final transaction of a forced reload: drop what an earlier load wrote."""
    partition = f"{entity}_l{load_id}"
    attached = conn.execute(
        """
        select 1 from pg_class c join pg_namespace n on n.oid = c.relnamespace
        where n.nspname = %s and c.relname = %s and c.relispartition
        """,
        (LOADS_SCHEMA, partition),
    ).fetchone()
    if attached:
        conn.execute(f"drop table {LOADS_SCHEMA}.{partition}")
    else:
        conn.execute(f"delete from bronze.{entity} where _load_id = %s", (load_id,))
    conn.execute("delete from bronze.rejected_rows where load_id = %s", (load_id,))
