"""Checked rows in PostgreSQL's binary COPY format, built column-wise (no per-row Python).

A binary COPY spares the server the text input functions of integer, date and numeric,
about a fifth of its COPY time on the bulk load's rows (docs/benchmarks.md). The stream is
:data:`SIGNATURE`, the rows, :data:`TRAILER`. A row is a 16-bit field count and, per field,
a 32-bit byte length and the value, everything big-endian:

* ``int4`` (integer) 4 bytes, ``int8`` (bigint) 8 bytes, ``bool`` 1 byte (0 or 1);
* ``date``: a 32-bit count of days since 2000-01-01;
* ``numeric``: four int16 (digit count, weight, sign, display scale) and then base-10000
  digits. Every amount goes out with the same five digits: weight 3, so four digits cover
  the up to 13 integer digits of numeric(15,2), and the cents times 100 as the one
  fractional digit, with display scale 2. PostgreSQL strips leading and trailing zero
  digits on input, so it stores exactly what the text ``12.3`` or ``0012.30`` gives;
* ``text``: the UTF-8 bytes as they are.

Fixed-width fields are laid out with a numpy structured array, one record per row; a text
field splits the row there, and the pieces are joined with Arrow's ``binary_join``.
"""

from __future__ import annotations

from typing import Literal

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

SIGNATURE = b"PGCOPY\n\xff\r\n\x00" + bytes(8)  # signature, flags, header extension length
TRAILER = b"\xff\xff"  # a field count of -1

Kind = Literal["int4", "int8", "bool", "date", "numeric", "text"]

_DAYS_1970_TO_2000 = 10957
_NUMERIC_DIGITS = 5
# (field type, its byte length) of each fixed-width kind.
_FIXED: dict[str, tuple[np.dtype, int]] = {
    "int4": (np.dtype(">i4"), 4),
    "int8": (np.dtype(">i8"), 8),
    "bool": (np.dtype("u1"), 1),
    "date": (np.dtype(">i4"), 4),
    "numeric": (np.dtype((">i2", 4 + _NUMERIC_DIGITS)), 2 * (4 + _NUMERIC_DIGITS)),
}


def _ints(values: pa.Array) -> np.ndarray:
    return pc.fill_null(values, 0).to_numpy(zero_copy_only=False)


def _cents(values: pa.Array) -> np.ndarray:
    """The unscaled values of a decimal128(p, 2) array (every value below 2^63)."""
    values = pc.fill_null(values, pa.scalar(0, values.type))
    words = np.frombuffer(values.buffers()[1], dtype="<i8")
    return words[2 * values.offset :: 2][: len(values)]


def _numeric_words(values: pa.Array) -> np.ndarray:
    cents = _cents(values)
    whole, fraction = np.divmod(cents, 100)
    out = np.empty((len(cents), 4 + _NUMERIC_DIGITS), dtype=np.int64)
    out[:, 0] = _NUMERIC_DIGITS
    out[:, 1] = _NUMERIC_DIGITS - 2  # weight of the first digit: 10000^3
    out[:, 2] = 0  # sign: positive
    out[:, 3] = 2  # display scale
    for i in range(_NUMERIC_DIGITS - 1):  # most significant first
        out[:, 4 + i] = (whole // 10000 ** (_NUMERIC_DIGITS - 2 - i)) % 10000
    out[:, 4 + _NUMERIC_DIGITS - 1] = fraction * 100
    return out


def _fixed_values(kind: str, values: pa.Array) -> np.ndarray:
    if kind == "numeric":
        return _numeric_words(values)
    if kind == "date":
        return _ints(pc.cast(values, pa.int32())) - _DAYS_1970_TO_2000
    if kind == "bool":
        return _ints(pc.cast(values, pa.uint8()))
    return _ints(values)


def _as_binary(records: np.ndarray) -> pa.Array:
    """A structured array, one record per row -> a binary array of those records."""
    width = records.dtype.itemsize
    offsets = np.arange(len(records) + 1, dtype=np.int32) * width
    return pa.Array.from_buffers(
        pa.binary(), len(records), [None, pa.py_buffer(offsets), pa.py_buffer(records)]
    )


class _Segment:
    """The fixed-width fields between two text fields, as one structured record per row."""

    def __init__(self) -> None:
        self.names: list[str] = []
        self.types: list[np.dtype] = []
        self.values: list[np.ndarray | int] = []

    def add(self, dtype: np.dtype, value: np.ndarray | int) -> None:
        self.names.append(f"f{len(self.names)}")
        self.types.append(dtype)
        self.values.append(value)

    def build(self, n: int) -> pa.Array:
        records = np.empty(n, dtype=np.dtype(list(zip(self.names, self.types, strict=True))))
        for name, value in zip(self.names, self.values, strict=True):
            records[name] = value
        return _as_binary(records)


def encode_rows(fields: list[tuple[Kind, pa.Array]], valid: pa.Array | None = None) -> pa.Array:
    """The binary COPY rows of ``fields`` (kind, values) as a binary array, one value per row.
    Where ``valid`` is False the row is null and its values may be anything, nulls included,
    as long as they cast (a null is sent as a zero). Values of valid rows must fit their
    PostgreSQL types; the checker guarantees that."""
    n = len(fields[0][1]) if fields else 0
    parts: list[pa.Array] = []
    segment = _Segment()
    segment.add(np.dtype(">i2"), len(fields))
    for kind, values in fields:
        if kind == "text":
            text = pc.cast(pc.fill_null(values, ""), pa.binary())
            segment.add(np.dtype(">i4"), _ints(pc.binary_length(text)))
            parts += [segment.build(n), text]
            segment = _Segment()
            continue
        dtype, length = _FIXED[kind]
        segment.add(np.dtype(">i4"), length)
        segment.add(dtype, _fixed_values(kind, values))
    if segment.names:
        parts.append(segment.build(n))
    rows = parts[0] if len(parts) == 1 else pc.binary_join_element_wise(*parts, b"")
    if valid is not None and pc.all(valid).as_py() is False:
        rows = pc.if_else(valid, rows, pa.scalar(None, pa.binary()))
    return rows
