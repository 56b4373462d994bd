"""Feed Arrow batches of ready-made COPY lines to PostgreSQL without touching rows in Python,
and count what they hold. Used by the Spark tasks and by the driver alike."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field, fields

import pyarrow as pa
import pyarrow.compute as pc

from spark_loaders.domain import REASON_BIT, REASONS


def line_bytes(array: pa.Array) -> memoryview:
    """The concatenated bytes of a string or binary array's non-null values (COPY lines, each
    ending with a newline, or binary COPY rows).

    Without nulls, the slice of the data buffer between the first and last offsets is exactly
    the text to send. A null slot may still cover bytes (Arrow does not require it to be
    empty, and ``if_else`` leaves the other branch's text there), so nulls are dropped first.
    """
    if len(array) == 0 or array.null_count == len(array):
        return memoryview(b"")
    if array.null_count:
        array = pc.drop_null(array)
    _, offsets_buffer, data = array.buffers()
    large = pa.types.is_large_string(array.type) or pa.types.is_large_binary(array.type)
    kind = "q" if large else "i"
    offsets = memoryview(offsets_buffer).cast(kind)
    start = offsets[array.offset]
    end = offsets[array.offset + len(array)]
    return memoryview(data)[start:end]


@dataclass
class Stats:
    rows: int = 0
    loaded: int = 0
    rejected: int = 0
    repaired: int = 0
    id_min: int | None = None  # over loaded rows
    id_max: int | None = None
    max_valid_id: int | None = None  # over rows with a usable id (the high-water mark rule)
    line_min: int | None = None
    line_max: int | None = None
    # With rows, min and max: a line produced twice and another lost show unless they
    # cancel out exactly (verify_lines).
    line_sum: int = 0
    by_reason: dict[str, int] = field(default_factory=lambda: dict.fromkeys(REASONS, 0))

    def add(self, other: Stats) -> None:
        self.rows += other.rows
        self.loaded += other.loaded
        self.rejected += other.rejected
        self.repaired += other.repaired
        self.id_min = _min(self.id_min, other.id_min)
        self.id_max = _max(self.id_max, other.id_max)
        self.max_valid_id = _max(self.max_valid_id, other.max_valid_id)
        self.line_min = _min(self.line_min, other.line_min)
        self.line_max = _max(self.line_max, other.line_max)
        self.line_sum += other.line_sum
        for reason, count in other.by_reason.items():
            self.by_reason[reason] += count

    def as_row(self) -> dict:
        row = {f.name: getattr(self, f.name) for f in fields(self) if f.name != "by_reason"}
        row.update({f"r_{r}": c for r, c in self.by_reason.items()})
        return row

    @classmethod
    def from_row(cls, row: dict) -> Stats:
        names = {f.name for f in fields(cls)} - {"by_reason"}
        stats = cls(**{k: row[k] for k in names})
        stats.by_reason = {r: int(row[f"r_{r}"]) for r in REASONS}
        return stats


def _min(a: int | None, b: int | None) -> int | None:
    return b if a is None else a if b is None else min(a, b)


def _max(a: int | None, b: int | None) -> int | None:
    return b if a is None else a if b is None else max(a, b)


def batch_stats(batch: pa.RecordBatch) -> Stats:
    """Counts of one batch; a batch without rejects (the common case) costs two scans."""
    rows = batch.num_rows
    ok_lines = batch.column("_ok_line")
    rejected = ok_lines.null_count
    ids = batch.column("_id")
    repaired = batch.column("_repaired")
    lines = pc.min_max(batch.column("_line"))
    stats = Stats(
        rows=rows,
        loaded=rows - rejected,
        rejected=rejected,
        line_min=lines["min"].as_py(),
        line_max=lines["max"].as_py(),
        line_sum=pc.sum(batch.column("_line")).as_py() or 0,
    )
    if rejected == 0:
        loaded_ids = pc.min_max(ids)
        stats.max_valid_id = loaded_ids["max"].as_py()
        stats.repaired = repaired.true_count
    else:
        ok = ok_lines.is_valid()
        loaded_ids = pc.min_max(pc.filter(ids, ok))
        stats.max_valid_id = pc.max(ids).as_py()
        stats.repaired = pc.sum(pc.and_(ok, repaired)).as_py() or 0
        mask = batch.column("_mask")
        for reason in REASONS:
            hit = pc.not_equal(pc.bit_wise_and(mask, pa.scalar(REASON_BIT[reason], pa.int32())), 0)
            stats.by_reason[reason] = pc.sum(hit).as_py() or 0
    stats.id_min = loaded_ids["min"].as_py()
    stats.id_max = loaded_ids["max"].as_py()
    return stats


def copy_batches(
    cursor, statement: str, arrays: Iterable[pa.Array], *, header: bytes = b"", trailer: bytes = b""
) -> None:
    """COPY the rows of ``arrays`` (text lines, or binary rows framed by ``header`` and
    ``trailer``, see :mod:`spark_loaders.ingest.copy_binary`)."""
    with cursor.copy(statement) as copy:
        if header:
            copy.write(header)
        for array in arrays:
            chunk = line_bytes(array)
            if len(chunk):
                copy.write(chunk)
        if trailer:
            copy.write(trailer)
