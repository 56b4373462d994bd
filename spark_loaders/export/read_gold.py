"""Reading the gold models: PostgreSQL through JDBC, or the Spark catalog.

PostgreSQL reads happen inside one exported snapshot (``pg_export_snapshot()``): a
coordinating connection opens a repeatable-read transaction, measures each table (row
count and the bounds of its split column) and every JDBC partition imports the same
snapshot before it reads. So the partitions of one table, and the tables of one export,
all see the same committed state even if ``dbt build`` replaces a table meanwhile, and the
row count measured up front is exactly the row count the export must write.

The gold tables are locked (``ACCESS SHARE``) *before* the snapshot is taken. PostgreSQL
resolves a table name against the current catalog, not the transaction's snapshot: without
the lock, a ``dbt build`` that swaps a new gold table in after the snapshot was taken makes
the name point at a table whose rows the snapshot cannot see, and the export writes an empty
dataset. With the lock, dbt's swap waits until the export is done (or, if the swap is already
in progress, the export waits for it and reads the new table whole).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from types import TracebackType

import psycopg
from psycopg import sql
from pyspark.sql import DataFrame, SparkSession

from spark_loaders.connection import ConnectionInfo
from spark_loaders.errors import CondoError
from spark_loaders.export.models import GoldModel

ROWS_PER_READ_PARTITION = 250_000
FETCH_SIZE = 10_000


@dataclass(frozen=True)
class TableStats:
    rows: int
    low: int | date | None
    high: int | date | None


@dataclass(frozen=True)
class ReadPlan:
    partitions: int
    column: str | None = None
    lower: str | None = None
    upper: str | None = None


def plan_read(
    stats: TableStats,
    column: str,
    *,
    max_partitions: int,
    rows_per_partition: int = ROWS_PER_READ_PARTITION,
) -> ReadPlan:
    """How many JDBC connections to read a table with: one for small tables, otherwise
    about one per ``rows_per_partition`` rows, at most ``max_partitions``, split on
    ``column`` between its measured bounds."""
    if stats.low is None or stats.high is None or stats.rows <= rows_per_partition:
        return ReadPlan(partitions=1)
    wanted = min(max(max_partitions, 1), math.ceil(stats.rows / rows_per_partition))
    if isinstance(stats.low, date) and isinstance(stats.high, date):
        span = (stats.high - stats.low).days + 1
    else:
        span = int(stats.high) - int(stats.low) + 1  # type: ignore[arg-type]
    partitions = max(1, min(wanted, span))
    if partitions == 1:
        return ReadPlan(partitions=1)
    return ReadPlan(
        partitions=partitions,
        column=column,
        lower=str(stats.low),
        upper=str(stats.high),
    )


class PgSnapshot:
    """A read-only repeatable-read transaction whose snapshot JDBC readers can share."""

    def __init__(self, info: ConnectionInfo, schema: str, tables: Sequence[str] = ()) -> None:
        self.info = info
        self.schema = schema
        self.tables = tuple(tables)  # locked before the snapshot is taken
        self.snapshot_id: str | None = None
        self._conn: psycopg.Connection | None = None

    def __enter__(self) -> PgSnapshot:
        try:
            conn = psycopg.connect(**self.info.psycopg_kwargs(), connect_timeout=15)
        except psycopg.Error as exc:
            detail = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise CondoError(
                f"cannot connect to {self.info.url(hide_password=True)}: {detail}"
            ) from None
        conn.isolation_level = psycopg.IsolationLevel.REPEATABLE_READ
        conn.read_only = True
        self._lock_tables(conn)
        try:
            self.snapshot_id = conn.execute("select pg_export_snapshot()").fetchone()[0]
        except psycopg.Error:
            # Standbys before PostgreSQL 10 and some poolers cannot export snapshots: the
            # partitions then read independently, and the row-count check still guards.
            conn.rollback()
            self.snapshot_id = None
        self._conn = conn
        return self

    def _lock_tables(self, conn: psycopg.Connection, attempts: int = 5) -> None:
        """``LOCK TABLE`` the existing tables as the transaction's first statement (a lock
        statement does not fix a repeatable-read snapshot; the next query does)."""
        if not self.tables:
            return
        for attempt in range(attempts):
            conn.autocommit = True
            names = [
                name
                for name in self.tables
                if conn.execute(
                    "select to_regclass(%s) is not null",
                    (
                        sql.SQL("{}.{}")
                        .format(sql.Identifier(self.schema), sql.Identifier(name))
                        .as_string(conn),
                    ),
                ).fetchone()[0]
            ]
            conn.autocommit = False
            if not names:
                return
            statement = sql.SQL("lock table {} in access share mode").format(
                sql.SQL(", ").join(sql.Identifier(self.schema, n) for n in names)
            )
            try:
                conn.execute(statement)
                return
            except psycopg.errors.UndefinedTable:
                conn.rollback()  # dropped between the check and the lock: look again
                if attempt == attempts - 1:
                    raise

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._conn is not None:
            self._conn.rollback()
            self._conn.close()
            self._conn = None

    @property
    def conn(self) -> psycopg.Connection:
        assert self._conn is not None, "use PgSnapshot as a context manager"
        return self._conn

    def relation(self, model: GoldModel) -> str:
        return f"{self.schema}.{model.name}"

    def exists(self, model: GoldModel) -> bool:
        qualified = (
            sql.SQL("{}.{}")
            .format(sql.Identifier(self.schema), sql.Identifier(model.name))
            .as_string(self.conn)
        )
        row = self.conn.execute("select to_regclass(%s) is not null", (qualified,)).fetchone()
        return bool(row and row[0])

    def stats(self, model: GoldModel) -> TableStats:
        query = sql.SQL("select count(*), min({col}), max({col}) from {schema}.{table}").format(
            col=sql.Identifier(model.split_column),
            schema=sql.Identifier(self.schema),
            table=sql.Identifier(model.name),
        )
        rows, low, high = self.conn.execute(query).fetchone()  # type: ignore[misc]
        return TableStats(rows=int(rows), low=low, high=high)

    def session_init(self) -> str | None:
        """The statement each JDBC partition runs first to join the shared snapshot."""
        if self.snapshot_id is None:
            return None
        return (
            "SET TRANSACTION ISOLATION LEVEL REPEATABLE READ; "
            f"SET TRANSACTION SNAPSHOT '{self.snapshot_id}'"
        )


def read_postgres(
    spark: SparkSession, model: GoldModel, snapshot: PgSnapshot, plan: ReadPlan
) -> DataFrame:
    """The gold table as a DataFrame read over JDBC with ``plan.partitions`` connections."""
    info = snapshot.info
    reader = (
        spark.read.format("jdbc")
        .option("url", info.jdbc_url())
        .option("dbtable", f'"{snapshot.schema}"."{model.name}"')
        .option("fetchsize", str(FETCH_SIZE))
    )
    for key, value in info.jdbc_properties().items():
        reader = reader.option(key, value)
    init = snapshot.session_init()
    if init:
        reader = reader.option("sessionInitStatement", init)
    if plan.partitions > 1:
        reader = (
            reader.option("partitionColumn", plan.column)
            .option("lowerBound", plan.lower)
            .option("upperBound", plan.upper)
            .option("numPartitions", str(plan.partitions))
        )
    return reader.load()


def spark_table_name(model: GoldModel, schema: str) -> str:
    return f"{schema}.{model.name}"


def read_spark(spark: SparkSession, model: GoldModel, schema: str) -> DataFrame:
    """The gold model as built by dbt on the ``spark`` target."""
    name = spark_table_name(model, schema)
    if not spark.catalog.tableExists(name):
        raise CondoError(
            f"the Spark table {name} does not exist; build the gold models first "
            "(`condo dbt build --target spark` or `condo pipeline --target spark`)"
        )
    return spark.table(name)
