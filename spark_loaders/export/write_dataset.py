"""Writing one gold model as a Parquet dataset into a temporary directory, checking it
with pyarrow (an independent reader) and describing it in its manifest.

The swap into place is :mod:`spark_loaders.export.swap`'s job; nothing here touches the
live dataset directory.
"""

from __future__ import annotations

import math
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from spark_loaders.errors import CondoError
from spark_loaders.export.models import GoldModel

ROWS_PER_FILE = 5_000_000
COMPRESSION = "zstd"


@dataclass(frozen=True)
class ParquetFile:
    path: str  # relative to the dataset directory
    rows: int
    bytes: int


@dataclass(frozen=True)
class WrittenDataset:
    directory: Path
    files: tuple[ParquetFile, ...]
    schema: pa.Schema  # of the files (hive partition columns live in directory names)

    @property
    def rows(self) -> int:
        return sum(f.rows for f in self.files)

    @property
    def bytes(self) -> int:
        return sum(f.bytes for f in self.files)


def file_count(rows: int, rows_per_file: int = ROWS_PER_FILE, read_partitions: int = 1) -> int:
    """Files for an unpartitioned model: enough for ``rows_per_file``, and one per read
    partition when the read was split (so writing needs no shuffle)."""
    return max(1, read_partitions, math.ceil(rows / rows_per_file))


def arrange(df: DataFrame, model: GoldModel, files: int, input_partitions: int) -> DataFrame:
    """Lay rows out for writing, sorted by the model's key inside every file.

    * Partitioned model: one file per month. Read in one partition it is only sorted (no
      shuffle); otherwise it is shuffled by month, since read ranges do not follow months.
    * Unpartitioned model: ``files`` files. When the input already has that many partitions
      (a JDBC read splits on the sort key, so each partition is a contiguous key range)
      each partition is sorted and written as it is: no shuffle, files in key order.
      Otherwise a ``repartition`` (not ``coalesce``, which would fold a parallel read
      into one task).
    """
    part = model.lake_partition
    if part is not None:
        keys = (part.name, *model.sort_columns)
        if input_partitions <= 1:
            return df.sortWithinPartitions(*keys)
        return df.repartition(F.col(part.name)).sortWithinPartitions(*keys)
    keys = model.sort_columns
    if input_partitions == files:
        return df.sortWithinPartitions(*keys)
    if files <= 1:
        return df.repartition(1).sortWithinPartitions(*keys)
    return df.repartition(files, F.col(keys[0])).sortWithinPartitions(*keys)


def expected_arrow_schema(model: GoldModel) -> pa.Schema:
    """The Arrow schema a reader must find in every file of ``model``'s dataset."""
    types: dict[str, pa.DataType] = {
        "int": pa.int32(),
        "bigint": pa.int64(),
        "string": pa.string(),
        "date": pa.date32(),
    }
    fields = []
    for column in model.columns:
        if column.spark_type.startswith("decimal("):
            precision, scale = column.spark_type[8:-1].split(",")
            dtype: pa.DataType = pa.decimal128(int(precision), int(scale))
        else:
            dtype = types[column.spark_type]
        fields.append(pa.field(column.name, dtype))
    return pa.schema(fields)


def spark_write(
    df: DataFrame,
    model: GoldModel,
    directory: Path,
    *,
    rows_per_file: int = ROWS_PER_FILE,
    compression: str = COMPRESSION,
) -> None:
    writer = (
        df.write.mode("errorifexists")
        .option("compression", compression)
        .option("maxRecordsPerFile", str(rows_per_file))
        # the manifest replaces Hadoop's empty _SUCCESS marker
        .option("mapreduce.fileoutputcommitter.marksuccessfuljobs", "false")
    )
    if model.lake_partition is not None:
        writer = writer.partitionBy(model.lake_partition.name)
    writer.parquet(directory.resolve().as_uri())


def tidy(directory: Path) -> None:
    """Drop Hadoop's side files (``.crc`` checksums, ``_SUCCESS``): readers ignore them,
    people listing the directory should not have to."""
    for path in list(directory.rglob("*")):
        if path.is_file() and (
            (path.name.startswith(".") and path.name.endswith(".crc")) or path.name == "_SUCCESS"
        ):
            path.unlink()
        elif path.is_dir() and path.name.startswith("_temporary"):
            shutil.rmtree(path)


def ensure_schema_file(directory: Path, model: GoldModel, *, compression: str) -> None:
    """An empty model still gets one (empty) Parquet file, so readers see its schema.

    Spark writes no file at all for an empty partitioned dataset.
    """
    if not any(directory.rglob("*.parquet")):
        pq.write_table(
            expected_arrow_schema(model).empty_table(),
            directory / f"part-00000-empty.{compression}.parquet",
            compression=compression,
        )


def inspect(directory: Path, model: GoldModel) -> WrittenDataset:
    """Read every file's footer with pyarrow and check it against the contract."""
    expected = expected_arrow_schema(model)
    files = []
    for path in sorted(directory.rglob("*.parquet")):
        meta = pq.read_metadata(path)
        schema = meta.schema.to_arrow_schema().remove_metadata()
        if not schema.equals(expected):
            raise CondoError(
                f"internal check failed: {path.name} of {model.name} has schema {schema}, "
                f"expected {expected}"
            )
        rel = path.relative_to(directory).as_posix()
        files.append(ParquetFile(path=rel, rows=meta.num_rows, bytes=path.stat().st_size))
    return WrittenDataset(directory=directory, files=tuple(files), schema=expected)


def parquet_types(directory: Path, written: WrittenDataset) -> dict[str, str]:
    """Physical and logical Parquet type of each column, from the first file's footer."""
    if not written.files:
        return {}
    schema = pq.read_metadata(directory / written.files[0].path).schema
    out = {}
    for i in range(len(schema)):
        col = schema.column(i)
        logical = str(col.logical_type) if col.logical_type.type != "NONE" else ""
        out[col.name] = f"{col.physical_type} {logical}".strip()
    return out


def describe(model: GoldModel, written: WrittenDataset, *, compression: str) -> dict[str, Any]:
    """The data half of the manifest: schema, partitioning, files."""
    physical = parquet_types(written.directory, written)
    columns = [
        {
            "name": c.name,
            "type": c.spark_type,
            "postgres_type": c.pg_type,
            "arrow_type": str(written.schema.field(c.name).type),
            "parquet_type": physical.get(c.name),
        }
        for c in model.columns
    ]
    part = model.lake_partition
    partitioning = (
        {
            "style": "hive",
            "columns": [
                {
                    "name": part.name,
                    "type": "string",
                    "derived_from": part.source_column,
                    "meaning": part.description,
                }
            ],
        }
        if part is not None
        else None
    )
    return {
        "row_count": written.rows,
        "columns": columns,
        "sort_order": list(model.sort_columns),
        "partitioning": partitioning,
        "compression": compression,
        "file_count": len(written.files),
        "total_bytes": written.bytes,
        "files": [{"path": f.path, "rows": f.rows, "bytes": f.bytes} for f in written.files],
    }
