"""The parallel parser: physical lines with ``spark.read.text``, numbered without a shuffle,
split into fields with native functions. Produces the record shape shared with the exact
parser: ``_line`` (physical line where the record starts), ``_raw`` (the record as read,
without its terminator), ``_fields`` (array of field values) and ``_ord`` (1-based ordinal of
the record among the file's non-blank data rows).

It handles files whose records each fit on one line and whose quoting is well-formed
(quoted fields closed on the same line, no ``"`` inside unquoted fields); :func:`scan_lines`
finds out, in the same cheap pass that counts lines per block.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from pyspark.sql import DataFrame, SparkSession, Window
from pyspark.sql import functions as F

from spark_loaders import spark_internals

_Q = r'"(?:[^"]|"")*+"'
_U = r'[^,"]*+'
# A line the parallel parser may split: quoted fields closed on the line, plain fields without '"'.
FAST_LINE = rf"^(?:{_Q}|{_U})(?:,(?:{_Q}|{_U}))*+$"
# Fields of such a line once a ',' is put in front of it: each match is ',' plus one field.
FIELD = rf",({_Q}|{_U})"


@dataclass(frozen=True)
class Block:
    start: int  # byte offset of the split (input_file_block_start)
    lines: int
    first_mono: int  # smallest monotonically_increasing_id in the split
    nonblank: int


@dataclass(frozen=True)
class LineScan:
    blocks: tuple[Block, ...]
    blank_lines: int
    irregular_lines: int  # lines the parallel parser cannot split (quoted newlines, stray '"')
    prefix: bool = False  # blocks carry the lines before them rather than their own counts


def _lines(spark: SparkSession, path: Path) -> DataFrame:
    text = spark.read.option("lineSep", "\n").text(str(path))
    value = F.col("value")
    stripped = F.when(value.endswith("\r"), F.expr("substring(value, 1, length(value) - 1)"))
    return text.select(
        stripped.otherwise(value).alias("_v"),
        F.input_file_block_start().alias("_blk"),
        F.monotonically_increasing_id().alias("_mono"),
    )


def _blank(v: str = "_v"):
    return F.btrim(F.col(v), F.lit(" \t")) == F.lit("")


def scan_lines(spark: SparkSession, path: Path, *, check_quotes: bool) -> LineScan:
    lines = _lines(spark, path)
    irregular = (
        F.when(F.col("_v").contains('"') & ~F.col("_v").rlike(FAST_LINE), 1).otherwise(0)
        if check_quotes
        else F.lit(0)
    )
    rows = (
        lines.groupBy("_blk")
        .agg(
            F.count(F.lit(1)).alias("n"),
            F.min("_mono").alias("m0"),
            F.sum(F.when(_blank(), 0).otherwise(1)).alias("nb"),
            F.sum(irregular).alias("bad"),
        )
        .collect()
    )
    blocks = tuple(
        sorted((Block(r["_blk"], r["n"], r["m0"], r["nb"]) for r in rows), key=lambda b: b.start)
    )
    return LineScan(
        blocks=blocks,
        blank_lines=sum(b.lines - b.nonblank for b in blocks),
        irregular_lines=sum(int(r["bad"]) for r in rows),
    )


MONO_PARTITION_SHIFT = 33  # monotonically_increasing_id = partition index << 33 | row index


def planned_line_offsets(spark: SparkSession, path: Path, newlines_before) -> LineScan | None:
    """Block metadata from the scan's planned splits instead of a counting pass.

    With ``lineSep`` set, a split that starts at byte ``s > 0`` begins with the line after the
    first newline at or after ``s``, so ``1 + newlines_before(s)`` lines precede it. That holds
    when every partition reads exactly one split, which is checked here (None otherwise); the
    writers verify afterwards that the numbered lines tile the file exactly.
    """
    try:
        blocks = []
        for index, starts in spark_internals.planned_file_splits(_lines(spark, path)):
            if len(starts) != 1:
                return None
            start = starts[0]
            before = 0 if start == 0 else 1 + newlines_before(start)
            first_mono = index << MONO_PARTITION_SHIFT
            blocks.append(Block(start, before, first_mono, -1))
    except Exception:  # an unexpected plan shape: fall back to the counting pass
        return None
    # Here Block.lines holds the lines *before* the block (a prefix sum), see line_deltas.
    return LineScan(tuple(sorted(blocks, key=lambda b: b.start)), 0, 0, prefix=True)


def _lookup(values: dict[int, int], key: str):
    """A literal map from block start to a number, looked up per row (a handful of blocks)."""
    pairs = []
    for k, v in values.items():
        pairs += [F.lit(k), F.lit(v)]
    return F.element_at(F.create_map(*pairs), F.col(key))


def fast_records(spark: SparkSession, path: Path, *, header_line: int, scan: LineScan) -> DataFrame:
    line_delta: dict[int, int] = {}
    nonblank_before: dict[int, int] = {}
    lines_seen = 0
    nonblank_seen = 0
    for block in scan.blocks:
        if scan.prefix:
            lines_seen = block.lines
        line_delta[block.start] = lines_seen - block.first_mono
        nonblank_before[block.start] = nonblank_seen
        lines_seen += block.lines
        nonblank_seen += block.nonblank

    lines = _lines(spark, path).withColumn(
        "_line", F.col("_mono") + _lookup(line_delta, "_blk") + F.lit(1)
    )
    # Blank lines before the header are the only blank lines when this holds; then the data
    # ordinal is just the distance from the header line.
    blanks_after_header = scan.blank_lines - (header_line - 1)
    if blanks_after_header == 0:
        ordinal = F.col("_line") - F.lit(header_line)
    else:
        running = F.sum(F.when(_blank(), 0).otherwise(1)).over(
            Window.partitionBy("_blk")
            .orderBy("_mono")
            .rowsBetween(Window.unboundedPreceding, Window.currentRow)
        )
        # Non-blank lines up to this one, minus the header (the only non-blank line before it).
        ordinal = _lookup(nonblank_before, "_blk") + running - F.lit(1)
    lines = lines.withColumn("_ord", ordinal)

    v = F.col("_v")
    quoted_fields = F.transform(
        F.regexp_extract_all(F.concat(F.lit(","), v), F.lit(FIELD), 1),
        lambda f: F.when(
            f.startswith('"'),
            F.replace(f.substr(F.lit(2), F.length(f) - F.lit(2)), F.lit('""'), F.lit('"')),
        ).otherwise(f),
    )
    fields = F.when(v.contains('"'), quoted_fields).otherwise(F.split(v, ",", -1))
    return lines.where((F.col("_line") > F.lit(header_line)) & ~_blank()).select(
        F.col("_line").cast("long").alias("_line"),
        v.alias("_raw"),
        fields.alias("_fields"),
        F.col("_ord").cast("long").alias("_ord"),
    )
