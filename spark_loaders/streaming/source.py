"""The file source: one streaming query over the landing directory for all four entities.

The source is schema-free on purpose: it reads ``binaryFile`` metadata (path, modification
time, length) and never the content, so a malformed file cannot break the stream and every
validation rule stays in the batch loader. Spark's file source gives what a hand-written
directory poller would get wrong: a checkpointed log of which files belong to which
micro-batch, bounded batches (``maxFilesPerTrigger``) and archiving of committed files
(``cleanSource=archive``).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import unquote, urlsplit

from pyspark.sql import functions as F
from pyspark.sql import types as T

from spark_loaders.errors import CondoError
from spark_loaders.streaming.query_id import is_local

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession

# The binaryFile format's fixed schema; only the first three columns are ever selected, and
# Spark does not read a file's bytes unless ``content`` is selected.
BINARY_FILE_SCHEMA = T.StructType(
    [
        T.StructField("path", T.StringType(), nullable=False),
        T.StructField("modificationTime", T.TimestampType(), nullable=False),
        T.StructField("length", T.LongType(), nullable=False),
        T.StructField("content", T.BinaryType(), nullable=True),
    ]
)

# Case-insensitive ``*.csv``. Spark's file index also skips names starting with ``.`` or
# ``_``, which is what makes "write ``.name.csv.tmp``, then rename" safe in the landing dir.
CSV_GLOB = "*.[cC][sS][vV]"

# Spark's file source forgets, and then never lists again, files whose modification time is
# more than ``maxFileAge`` (default 7 days) older than the newest file it has seen. Files
# copied with ``cp -p``/``rsync -a``, unpacked from archives or delivered by SFTP keep their
# old mtime, so the default silently skips them. A century makes every file new by path,
# whatever its mtime; the price is that the source remembers every path it has seen (one
# small entry per file in its checkpointed log, which it keeps anyway). ``latestFirst``
# stays off: with it on Spark ignores ``maxFileAge`` but processes the backlog newest first.
MAX_FILE_AGE = "36500d"


def check_layout(landing: str, archive: str) -> None:
    """Fail clearly before Spark does: the archive must exist outside the landing directory,
    or archived files would match the source and Spark refuses to start."""
    if not (is_local(landing) and is_local(archive)):
        return
    land = Path(local_path(landing)).resolve()
    arch = Path(local_path(archive)).resolve()
    if not land.is_dir():
        raise CondoError(f"the landing directory {land} does not exist")
    if arch == land or land in arch.parents:
        raise CondoError(f"the archive directory {arch} must not be inside the landing directory")
    if arch in land.parents:
        raise CondoError(f"the archive directory {arch} must not contain the landing directory")


def local_path(location: str) -> str:
    """A filesystem path for a plain path or a ``file:`` URI as Spark reports it
    (``file:/x/a%20b.csv`` -> ``/x/a b.csv``); any other URI is returned unchanged."""
    if location.startswith("file:"):
        return unquote(urlsplit(location).path)
    return location


def landing_files(
    spark: SparkSession, landing: str, *, archive: str, max_files_per_trigger: int
) -> DataFrame:
    """A streaming DataFrame with one row per new file: ``path``, ``modified_at``, ``size_bytes``."""
    return (
        spark.readStream.format("binaryFile")
        .schema(BINARY_FILE_SCHEMA)
        .option("pathGlobFilter", CSV_GLOB)
        .option("maxFilesPerTrigger", str(max_files_per_trigger))
        .option("maxFileAge", MAX_FILE_AGE)
        .option("latestFirst", "false")
        .option("cleanSource", "archive")
        .option("sourceArchiveDir", archive)
        .load(landing)
        .select(
            F.col("path").alias("path"),
            F.col("modificationTime").alias("modified_at"),
            F.col("length").alias("size_bytes"),
        )
    )
