"""The Spark target: bronze as Parquet tables in the session's catalog, for the dbt ``spark``
target, with the ledger and high-water marks as Spark tables too (no PostgreSQL needed).

Same parsing, validation and id rules as the PostgreSQL target. Each bronze table is
partitioned by ``_load_id`` (``bronze.rejected_rows`` by ``load_id``), which gives loads the
same shape as in PostgreSQL: a load writes its own partitions, and the ledger entry, written
last, is what makes them count. Atomicity is best effort (Spark tables have no multi-table
transactions): a run killed after writing partitions but before its ledger entry leaves
partitions that readers may see until the next run of that entity drops them (any partition
whose load id has no ``loaded`` ledger entry is removed first). There must be one writer at a
time. Meant for small to medium data.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime

from pyspark.sql import DataFrame, Row, SparkSession
from pyspark.sql import functions as F
from pyspark.sql import types as T

from spark_loaders.domain import (
    BY_NAME,
    ENTITIES,
    LINEAGE,
    LINEAGE_COLUMNS,
    PARTITION_COLUMN,
    REASON_BIT,
    REASONS,
    Entity,
)
from spark_loaders.ingest.copy_stream import Stats
from spark_loaders.ingest.discover import SourceFile
from spark_loaders.ingest.file_checks import CheckedFile, FileRejected, check_file
from spark_loaders.ingest.file_load import RunContext, short_error, verify_lines
from spark_loaders.ingest.header import ColumnMap
from spark_loaders.ingest.ids import IdOutcome, check_room, id_outcome
from spark_loaders.ingest.ledger import PreviousLoad
from spark_loaders.ingest.prescan import Prescan, prescan
from spark_loaders.ingest.report import FileResult
from spark_loaders.ingest.validate import reasons_of, value_col

LOADS_SCHEMA = T.StructType(
    [
        T.StructField("load_id", T.LongType()),
        T.StructField("entity", T.StringType()),
        T.StructField("source_file", T.StringType()),
        T.StructField("source_path", T.StringType()),
        T.StructField("content_hash", T.StringType()),
        T.StructField("size_bytes", T.LongType()),
        T.StructField("status", T.StringType()),
        T.StructField("has_ids", T.BooleanType()),
        T.StructField("rows_read", T.LongType()),
        T.StructField("rows_loaded", T.LongType()),
        T.StructField("rows_rejected", T.LongType()),
        T.StructField("rows_repaired", T.LongType()),
        T.StructField("rejects_by_reason", T.MapType(T.StringType(), T.LongType())),
        T.StructField("id_min", T.LongType()),
        T.StructField("id_max", T.LongType()),
        T.StructField("warnings", T.ArrayType(T.StringType())),
        T.StructField("error", T.StringType()),
        T.StructField("mode", T.StringType()),
        T.StructField("stream_query_id", T.StringType()),
        T.StructField("stream_batch_id", T.LongType()),
        T.StructField("replaced_by", T.LongType()),
        T.StructField("started_at", T.TimestampType()),
        T.StructField("finished_at", T.TimestampType()),
    ]
)
WATERMARKS_SCHEMA = T.StructType(
    [T.StructField("entity", T.StringType()), T.StructField("high_water", T.LongType())]
)


# The lineage columns in the order a Spark bronze table stores them: Spark keeps the
# partition column last. ``insertInto`` matches columns by position, so the writer follows it.
SPARK_LINEAGE: tuple[str, ...] = tuple(sorted(LINEAGE, key=lambda name: name == PARTITION_COLUMN))


def _bronze_ddl(entity: Entity) -> str:
    spark_type = {c.name: c.spark_type for c in LINEAGE_COLUMNS}
    columns = ", ".join(
        [f"{c.name} {c.spark_type}" for c in entity.columns]
        + [f"{name} {spark_type[name]}" for name in SPARK_LINEAGE]
    )
    return (
        f"create table if not exists bronze.{entity.name} ({columns}) "
        f"using parquet partitioned by ({PARTITION_COLUMN})"
    )


def ensure_spark_schema(spark: SparkSession) -> None:
    spark.sql("create database if not exists bronze")
    spark.sql("create database if not exists ops")
    for entity in ENTITIES:
        spark.sql(_bronze_ddl(entity))
    spark.sql(
        "create table if not exists bronze.rejected_rows (entity string, source_file string, "
        "source_line bigint, raw_line string, reasons array<string>, rejected_at timestamp, "
        "load_id bigint) using parquet partitioned by (load_id)"
    )
    ddl = ", ".join(f"{f.name} {f.dataType.simpleString()}" for f in LOADS_SCHEMA.fields)
    spark.sql(f"create table if not exists ops.loads ({ddl}) using parquet")
    spark.sql(
        "create table if not exists ops.id_watermarks (entity string, high_water bigint) "
        "using parquet"
    )


def _typed(column_kind: str, v):
    if column_kind in ("id", "int"):
        return v.try_cast("int")
    if column_kind == "date":
        return F.try_to_date(v, "yyyy-MM-dd")
    if column_kind == "money":
        return v.try_cast("decimal(15,2)")
    return v


class SparkTargetLoader:
    def __init__(self, spark: SparkSession, *, force: bool, run: RunContext) -> None:
        self.spark = spark
        self.force = force
        self.run = run
        ensure_spark_schema(spark)

    # -- ledger ---------------------------------------------------------------------------

    def _ledger(self) -> list[Row]:
        return self.spark.table("ops.loads").collect()

    def _write_ledger(self, rows: list[dict]) -> None:
        df = self.spark.createDataFrame(rows, LOADS_SCHEMA)
        df.write.mode("overwrite").insertInto("ops.loads", overwrite=True)

    def _append_ledger(self, row: dict) -> None:
        self.spark.createDataFrame([row], LOADS_SCHEMA).write.insertInto("ops.loads")

    def _watermarks(self) -> dict[str, int]:
        marks = {e.name: 0 for e in ENTITIES}
        for row in self.spark.table("ops.id_watermarks").collect():
            marks[row["entity"]] = int(row["high_water"])
        return marks

    def _drop_partitions(self, table: str, column: str, keep: set[int]) -> None:
        for row in self.spark.sql(f"show partitions {table}").collect():
            value = int(row[0].split("=", 1)[1])
            if value not in keep:
                self.spark.sql(f"alter table {table} drop if exists partition ({column}={value})")

    # -- one file ---------------------------------------------------------------------------

    def load(self, source: SourceFile) -> FileResult:
        clock = time.monotonic()
        entity = BY_NAME[source.entity]
        if source.symlink:
            return _refuse_symlink(entity, source)
        scan = prescan(source.path)
        ledger = self._ledger()
        self._drop_unowned(entity, ledger)
        load_id = max((r["load_id"] for r in ledger), default=0) + 1
        now = datetime.now(UTC).replace(tzinfo=None)
        entry = self._new_entry(entity, source, scan, load_id, now)
        result = FileResult(entity.name, source.path, "failed", load_id=load_id)
        result.content_hash = scan.content_hash
        previous_row = _previous_row(ledger, entity, scan)
        marks: dict[str, int] = {}

        def high_water() -> int:
            marks.update(self._watermarks())
            return marks[entity.name]

        def on_header(cmap: ColumnMap) -> None:
            entry["has_ids"] = cmap.has_ids
            entry["warnings"] = list(cmap.warnings)

        try:
            file = check_file(
                self.spark,
                source,
                scan,
                entity,
                previous=_previous_load(previous_row),
                force=self.force,
                high_water=high_water,
                on_header=on_header,
            )
            if file is None:
                entry["status"] = "skipped"
                return self._finish(result, entry, clock)
            if not marks:  # a file without a header: high_water() was not needed
                marks.update(self._watermarks())
            stats = self._write_checked(file, entity, source.name, load_id, now)
            ids = id_outcome(file.base, stats)
            _mark_loaded(entry, stats, ids)
            self._record_loaded(entry, entity, previous_row)
            self._raise_high_water(marks, entity, ids.high_water)
            return self._fill(result, entry, clock)
        except FileRejected as exc:
            entry.update(status="rejected", error=str(exc))
            return self._finish(result, entry, clock)
        except Exception as exc:
            entry.update(status="failed", error=short_error(exc))
            return self._finish(result, entry, clock)

    def _drop_unowned(self, entity: Entity, ledger: list[Row]) -> None:
        """Leftovers of an interrupted run: partitions that no loaded ledger entry owns."""
        loaded = {r["load_id"] for r in ledger if r["status"] == "loaded"}
        self._drop_partitions(f"bronze.{entity.name}", "_load_id", loaded)
        self._drop_partitions("bronze.rejected_rows", "load_id", loaded)

    def _new_entry(
        self, entity: Entity, source: SourceFile, scan: Prescan, load_id: int, now: datetime
    ) -> dict:
        """The ledger entry as it stands when the load begins: failed until it succeeds."""
        entry = {f.name: None for f in LOADS_SCHEMA.fields}
        entry.update(
            load_id=load_id,
            entity=entity.name,
            source_file=source.name,
            source_path=str(source.path),
            content_hash=scan.content_hash,
            size_bytes=scan.size,
            status="failed",
            rows_read=0,
            rows_loaded=0,
            rows_rejected=0,
            rows_repaired=0,
            rejects_by_reason={},
            warnings=[],
            mode=self.run.mode,
            stream_query_id=self.run.stream_query_id,
            stream_batch_id=self.run.stream_batch_id,
            started_at=now,
        )
        return entry

    def _write_checked(
        self, file: CheckedFile, entity: Entity, source_file: str, load_id: int, now: datetime
    ) -> Stats:
        """Write the parsed rows and rejects (nothing for a file with no rows); their counts."""
        if file.checked is None:
            return Stats()
        checked = file.checked.persist()
        try:
            stats = _stats(checked)
            check_room(file.base, stats.rows)
            verify_lines(file.parsed.expected_lines if file.parsed else None, stats)
            self._write_rows(checked, entity, source_file, load_id, now)
            return stats
        finally:
            checked.unpersist()

    def _record_loaded(self, entry: dict, entity: Entity, previous_row: Row | None) -> None:
        """Write the ledger entry that makes the load count. A forced reload retires the
        previous load and drops its partitions."""
        entry["finished_at"] = datetime.now(UTC).replace(tzinfo=None)
        if previous_row is None:
            self._append_ledger(entry)
            return
        load_id = entry["load_id"]
        rows = [r.asDict() for r in self._ledger()]
        for row in rows:
            if row["load_id"] == previous_row["load_id"]:
                row.update(status="replaced", replaced_by=load_id)
        self._write_ledger([*rows, entry])
        keep = {r["load_id"] for r in rows if r["status"] == "loaded"} | {load_id}
        self._drop_partitions(f"bronze.{entity.name}", "_load_id", keep)
        self._drop_partitions("bronze.rejected_rows", "load_id", keep)

    def _raise_high_water(self, marks: dict[str, int], entity: Entity, high: int | None) -> None:
        if high is not None and high > marks[entity.name]:
            marks[entity.name] = high
            self.spark.createDataFrame(sorted(marks.items()), WATERMARKS_SCHEMA).write.insertInto(
                "ops.id_watermarks", overwrite=True
            )

    def _write_rows(
        self, checked: DataFrame, entity: Entity, source_file: str, load_id: int, now: datetime
    ) -> None:
        valid = checked.where(F.col("_mask") == F.lit(0))
        entity_columns = [
            (F.col("_id") if c.kind == "id" else _typed(c.kind, F.col(value_col(c.name))))
            .cast(c.spark_type)
            .alias(c.name)
            for c in entity.columns
        ]
        lineage = {
            "_source_file": F.lit(source_file),
            "_source_line": F.col("_line"),
            "_load_id": F.lit(load_id).cast("long"),
            "_loaded_at": F.lit(now).cast("timestamp"),
            "_repaired": F.col("_repaired"),
        }
        valid.select(
            *entity_columns, *(lineage[name].alias(name) for name in SPARK_LINEAGE)
        ).write.insertInto(f"bronze.{entity.name}")
        checked.where(F.col("_mask") != F.lit(0)).select(
            F.lit(entity.name).alias("entity"),
            F.lit(source_file).alias("source_file"),
            F.col("_line").alias("source_line"),
            F.col("_raw").alias("raw_line"),
            reasons_of(F.col("_mask")).alias("reasons"),
            F.lit(now).cast("timestamp").alias("rejected_at"),
            F.lit(load_id).cast("long").alias("load_id"),
        ).write.insertInto("bronze.rejected_rows")

    def _finish(self, result: FileResult, entry: dict, clock: float) -> FileResult:
        entry["finished_at"] = datetime.now(UTC).replace(tzinfo=None)
        for key in ("rows_read", "rows_loaded", "rows_rejected", "rows_repaired"):
            if entry["status"] != "loaded":
                entry[key] = 0
        self._append_ledger(entry)
        return self._fill(result, entry, clock)

    @staticmethod
    def _fill(result: FileResult, entry: dict, clock: float) -> FileResult:
        result.status = entry["status"]
        result.rows_read = entry["rows_read"] or 0
        result.rows_loaded = entry["rows_loaded"] or 0
        result.rows_rejected = entry["rows_rejected"] or 0
        result.rows_repaired = entry["rows_repaired"] or 0
        result.rejects_by_reason = dict(entry["rejects_by_reason"] or {})
        result.warnings = list(entry["warnings"] or [])
        result.error = entry["error"]
        result.id_min, result.id_max = entry["id_min"], entry["id_max"]
        result.seconds = time.monotonic() - clock
        return result


def _stats(checked: DataFrame) -> Stats:
    mask = F.col("_mask")
    valid = mask == F.lit(0)
    row = checked.agg(
        F.count(F.lit(1)).alias("rows"),
        F.sum(F.when(valid, 1).otherwise(0)).alias("loaded"),
        F.sum(F.when(valid & F.col("_repaired"), 1).otherwise(0)).alias("repaired"),
        F.min(F.when(valid, F.col("_id"))).alias("id_min"),
        F.max(F.when(valid, F.col("_id"))).alias("id_max"),
        F.max("_id").alias("max_valid_id"),
        F.min("_line").alias("line_min"),
        F.max("_line").alias("line_max"),
        F.sum("_line").alias("line_sum"),
        *[
            F.sum(F.when(mask.bitwiseAND(F.lit(REASON_BIT[r])) != 0, 1).otherwise(0)).alias(r)
            for r in REASONS
        ],
    ).first()
    rows = int(row["rows"])
    loaded = int(row["loaded"] or 0)
    stats = Stats(
        rows=rows,
        loaded=loaded,
        rejected=rows - loaded,
        repaired=int(row["repaired"] or 0),
        id_min=row["id_min"],
        id_max=row["id_max"],
        max_valid_id=row["max_valid_id"],
        line_min=row["line_min"],
        line_max=row["line_max"],
        line_sum=int(row["line_sum"] or 0),
    )
    stats.by_reason = {r: int(row[r] or 0) for r in REASONS}
    return stats


def _refuse_symlink(entity: Entity, source: SourceFile) -> FileResult:
    """Never followed; the Spark target's ledger has no reason column, so the PostgreSQL
    target is where a refused link is recorded. Here the run is told plainly."""
    result = FileResult(entity.name, source.path, "rejected")
    result.error = "symlink: the file is a symbolic link; links are not followed"
    result.reason = "symlink"
    return result


def _previous_row(ledger: list[Row], entity: Entity, scan: Prescan) -> Row | None:
    """The loaded ledger entry of these bytes, if any (by either hash)."""
    return next(
        (
            r
            for r in ledger
            if r["entity"] == entity.name
            and r["content_hash"] in (scan.content_hash, scan.sha256)
            and r["status"] == "loaded"
        ),
        None,
    )


def _previous_load(row: Row | None) -> PreviousLoad | None:
    if row is None:
        return None
    return PreviousLoad(row["load_id"], row["has_ids"], row["id_min"], row["id_max"])


def _mark_loaded(entry: dict, stats: Stats, ids: IdOutcome) -> None:
    entry.update(
        status="loaded",
        rows_read=stats.rows,
        rows_loaded=stats.loaded,
        rows_rejected=stats.rejected,
        rows_repaired=stats.repaired,
        rejects_by_reason={k: v for k, v in stats.by_reason.items() if v},
        id_min=ids.id_min,
        id_max=ids.id_max,
    )
