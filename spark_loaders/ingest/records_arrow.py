"""The vectorised parser and validator: raw CSV bytes -> checked COPY rows, in pyarrow only.

This is the fast path of the bulk load (see :mod:`spark_loaders.ingest.sink_postgres`). It
produces, for a block of whole lines, the batch shape that the Spark path produces with
:func:`spark_loaders.ingest.validate.check` plus
:func:`spark_loaders.ingest.validate.copy_lines`: ``_ok_line`` / ``_rej_line`` (one of them
null), ``_mask``, ``_id``, ``_repaired`` and ``_line``. The rules are those of
docs/ingestion.md, evaluated with Arrow compute kernels instead of JVM expressions, so a row
costs a fraction of a microsecond of client CPU and never crosses a JVM/Python boundary.
``_ok_line`` holds the valid rows in PostgreSQL's binary COPY format
(:mod:`spark_loaders.ingest.copy_binary`), built from the values the checks parsed; with
``Layout.binary`` off it holds the Spark path's CSV lines instead, which is how the tests
compare the two paths line by line.

It applies only to files where the dialect is trivial, which the pre-scan establishes:
no ``"`` anywhere (every field is the text between two commas), no blank line, no lone CR
(a CR only ever ends a line, as part of CRLF), and a one-line header. Then each physical line
after the header is one record, numbered by its position. Every other file takes the Spark
path, which implements the whole dialect. ``tests/python/test_records_arrow.py`` holds both
paths to the same output, row by row, on files full of defects.
"""

from __future__ import annotations

import io
import itertools
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pcsv

from spark_loaders.domain import BY_NAME, INT4_MAX, REASON_BIT, REASONS, Column, Entity
from spark_loaders.ingest.copy_binary import Kind, encode_rows
from spark_loaders.ingest.validate import TRIM_CHARS, csv_quote

STRING = pa.string()
_NULL_TEXT = pa.scalar(None, STRING)
_DATE = r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$"
_AMOUNT = r"^[0-9]+(\.[0-9]{1,2})?$"
# The reasons of every possible mask, as the text of a PostgreSQL array literal's body.
_REASON_TEXT = pa.array(
    [",".join(r for r in REASONS if mask & REASON_BIT[r]) for mask in range(1 << len(REASONS))],
    STRING,
)


@dataclass(frozen=True)
class Layout:
    """What a task needs to check the lines of one file (small and picklable)."""

    entity: str
    positions: tuple[tuple[str, int], ...]  # entity column -> 0-based field index
    width: int  # fields in the header
    overflow_index: int | None
    id_base: int | None  # positional id base; None when the file has ids
    header_line: int
    source_file: str
    load_id: int
    binary: bool = True  # valid rows as binary COPY rows (copy_binary), else CSV lines


@dataclass(frozen=True)
class Chunk:
    """A byte range of the file that starts at a line start and ends after a newline (or at
    the end of the file), with the physical line number of its first line."""

    start: int
    end: int
    first_line: int


def eligible(scan, header_line: int, header_last_line: int) -> bool:
    """Whether the pre-scan's facts allow the vectorised path (see the module docstring)."""
    return (
        not scan.has_quote
        and not scan.maybe_blank
        and not scan.lone_cr
        and header_line == header_last_line == 1
    )


def plan_chunks(path: Path, scan, *, pieces: int) -> list[Chunk]:
    """Split the data lines (everything after the first line) into about ``pieces`` ranges
    that start at line starts. Line numbers come from the pre-scan's newline index."""
    with path.open("rb") as handle:

        def line_start_at_or_after(offset: int) -> int:
            if offset <= 0:
                return 0
            handle.seek(offset - 1)
            while block := handle.read(1 << 16):
                found = block.find(b"\n")
                if found >= 0:
                    return handle.tell() - len(block) + found + 1
            return scan.size

        data_start = line_start_at_or_after(1)
        span = scan.size - data_start
        cuts = {data_start, scan.size}
        for k in range(1, max(1, pieces)):
            cuts.add(min(scan.size, line_start_at_or_after(data_start + span * k // pieces)))
    bounds = sorted(cuts)
    return [
        Chunk(start, end, 1 + scan.newlines_before(path, start))
        for start, end in itertools.pairwise(bounds)
        if end > start
    ]


def read_blocks(path: str, chunk: Chunk, block_bytes: int) -> Iterator[tuple[int, bytes]]:
    """The chunk's bytes in blocks of whole lines, each with the number of its first line."""
    line = chunk.first_line
    carry = b""
    with open(path, "rb") as handle:
        handle.seek(chunk.start)
        remaining = chunk.end - chunk.start
        while remaining > 0:
            data = handle.read(min(block_bytes, remaining))
            if not data:
                raise OSError(f"{path} is shorter than when it was scanned")
            remaining -= len(data)
            data = carry + data
            cut = data.rfind(b"\n") + 1 if remaining > 0 else len(data)
            if cut == 0:  # no newline yet: a very long line, keep reading
                carry = data
                continue
            block, carry = data[:cut], data[cut:]
            yield line, block
            line += block.count(b"\n")
        if carry:
            yield line, carry


class _Arange:
    """0, 1, 2, ... as an int64 array, grown by doubling (no per-row Python)."""

    def __init__(self) -> None:
        self._values = pa.array([0], pa.int64())

    def __call__(self, n: int) -> pa.Array:
        # Threads share this cache: grow a local copy and publish it whole, so that no thread
        # ever reads the array while another replaces it halfway through a step.
        values = self._values
        while len(values) < n:
            values = pa.concat_arrays([values, pc.add(values, len(values))])
        self._values = values
        return values.slice(0, n)


_ARANGE = _Arange()


def _parse(block: bytes, width: int) -> tuple[pa.Table, list[tuple[int, str]]]:
    """Split the block's lines on commas; lines with another field count come back apart,
    with their 0-based position in the block."""
    odd: list[tuple[int, str]] = []

    def on_invalid(row) -> str:
        odd.append((row.number - 1, row.text))
        return "skip"

    names = [f"c{i}" for i in range(width)]
    table = pcsv.read_csv(
        io.BytesIO(block),
        read_options=pcsv.ReadOptions(
            use_threads=False, column_names=names, block_size=max(1 << 20, len(block) + 1)
        ),
        parse_options=pcsv.ParseOptions(
            quote_char=False,
            double_quote=False,
            escape_char=False,
            newlines_in_values=False,
            ignore_empty_lines=False,
            invalid_row_handler=on_invalid,
        ),
        convert_options=pcsv.ConvertOptions(
            column_types=dict.fromkeys(names, STRING),
            strings_can_be_null=False,
            quoted_strings_can_be_null=False,
        ),
    )
    return table, odd


def _positions_without(n_total: int, skipped: list[int]) -> pa.Array:
    """The positions 0..n_total-1 that are not in ``skipped`` (a handful of lines)."""
    if not skipped:
        return _ARANGE(n_total)
    gone = set(skipped)
    return pa.array([i for i in range(n_total) if i not in gone], pa.int64())


def _known(condition: pa.Array) -> pa.Array:
    return pc.fill_null(condition, False)


# A parsed column: where the value is valid, and the values as their Arrow type (an int64,
# date32 or decimal128(38, 2) array, arbitrary or null where invalid), or None when the
# check did not produce them (the binary rows then cast the text themselves).
Parsed = tuple[pa.Array, pa.Array | None]


def _parse_integer(v: pa.Array) -> Parsed:
    """Digits only, and as a number 1 .. 2^31-1 (leading zeros allowed)."""
    digits = _known(pc.ascii_is_decimal(v))
    significant = pc.utf8_ltrim(pc.if_else(digits, v, _NULL_TEXT), "0")
    length = pc.binary_length(significant)
    fits = pc.and_(pc.greater(length, 0), pc.less_equal(length, 10))  # "" was all zeros
    number = pc.cast(pc.if_else(_known(fits), significant, _NULL_TEXT), pa.int64())
    return _known(pc.and_(pc.greater(number, 0), pc.less_equal(number, INT4_MAX))), number


def _parse_date(v: pa.Array) -> Parsed:
    """``YYYY-MM-DD`` naming a real day, year 0001 to 9999: integer arithmetic, as the Spark
    path does."""
    try:
        # Arrow's date cast accepts exactly YYYY-MM-DD naming a real day (year 0000 too),
        # so a block of well-formed dates, the usual case, needs no regex. It fails the
        # whole array on one bad value; the checks below then judge each value.
        days = pc.cast(v, pa.date32())
    except pa.ArrowInvalid:
        return _parse_date_checked(v)
    return _known(pc.greater_equal(pc.cast(days, pa.int32()), _FIRST_DAY)), days


def _parse_date_checked(v: pa.Array) -> Parsed:
    shaped = _known(pc.match_substring_regex(v, _DATE))
    text = pc.if_else(shaped, v, _NULL_TEXT)
    try:  # Arrow's ISO parser checks the calendar, but fails the whole array on a bad day
        days = pc.cast(text, pa.date32())
    except pa.ArrowInvalid:
        return _calendar_date(text), None
    return _known(pc.greater_equal(pc.cast(days, pa.int32()), _FIRST_DAY)), days


_FIRST_DAY = -719162  # 0001-01-01 in days since 1970-01-01 (year 0000 is not a valid year)


def _calendar_date(text: pa.Array) -> pa.Array:
    """The slow way, for a batch holding an impossible day such as 2023-02-29."""

    def part(start: int, stop: int) -> pa.Array:
        return pc.cast(pc.utf8_slice_codeunits(text, start, stop), pa.int32())

    year, month, day = part(0, 4), part(5, 7), part(8, 10)

    def divisible(by: int) -> pa.Array:
        return pc.equal(pc.subtract(year, pc.multiply(pc.divide(year, by), by)), 0)

    leap = pc.and_(divisible(4), pc.or_(pc.invert(divisible(100)), divisible(400)))
    thirty = pc.is_in(month, value_set=pa.array([4, 6, 9, 11], pa.int32()))
    last_day = pc.if_else(pc.equal(month, 2), pc.if_else(leap, 29, 28), pc.if_else(thirty, 30, 31))
    ok = pc.and_(
        pc.and_(
            pc.greater_equal(year, 1), pc.and_(pc.greater_equal(month, 1), pc.less_equal(month, 12))
        ),
        pc.and_(pc.greater_equal(day, 1), pc.less_equal(day, last_day)),
    )
    return _known(ok)


_AMOUNT_TYPE = pa.decimal128(38, 2)
_AMOUNT_LIMIT = pa.scalar(10**13, pa.decimal128(38, 0)).cast(_AMOUNT_TYPE)
_AMOUNT_ZERO = pa.scalar(0, pa.decimal128(38, 0)).cast(_AMOUNT_TYPE)


def _parse_amount(v: pa.Array) -> Parsed:
    """``digits[.d[d]]``, above zero, that fits numeric(15,2) (13 integer digits), compared
    exactly as decimals."""
    shaped = _known(pc.match_substring_regex(v, _AMOUNT))
    text = pc.if_else(shaped, v, _NULL_TEXT)
    try:
        number = pc.cast(text, _AMOUNT_TYPE)
    except pa.ArrowInvalid:  # over 36 integer digits: too large anyway, but judge by float
        number = pc.cast(text, pa.float64())
        return _known(pc.and_(pc.greater(number, 0.0), pc.less(number, 1e13))), None
    return _known(pc.and_(pc.greater(number, _AMOUNT_ZERO), pc.less(number, _AMOUNT_LIMIT))), number


_PARSERS = {
    "id": ("invalid_integer", _parse_integer),
    "int": ("invalid_integer", _parse_integer),
    "date": ("invalid_date", _parse_date),
    "money": ("invalid_amount", _parse_amount),
}


def _column_flags(
    column: Column, v: pa.Array
) -> tuple[pa.Array, str | None, pa.Array | None, pa.Array | None]:
    """(empty, the reason of a bad value, where the value is bad, the parsed values) for one
    column."""
    empty = pc.equal(pc.binary_length(v), 0)
    if column.kind == "text":
        if not column.max_len:
            return empty, None, None, None
        return empty, "too_long", pc.greater(pc.utf8_length(v), column.max_len), None
    reason, parse = _PARSERS[column.kind]
    valid, parsed = parse(v)
    if column.kind == "id":  # the row's id as written to bronze: null where it is not valid
        parsed = pc.if_else(valid, parsed, pa.scalar(None, pa.int64()))
    return empty, reason, pc.and_(pc.invert(empty), pc.invert(valid)), parsed


def _mask(
    entity: Entity, values: dict[str, pa.Array], n: int
) -> tuple[pa.Array, dict[str, pa.Array]]:
    """Each row's reasons as a bit mask, and the parsed values of the typed columns."""
    bits: dict[str, pa.Array | None] = dict.fromkeys(REASONS[1:])
    parsed: dict[str, pa.Array] = {}
    for column in entity.columns:
        if column.name not in values:
            continue
        empty, reason, bad, typed = _column_flags(column, values[column.name])
        if typed is not None:
            parsed[column.name] = typed
        bits["required"] = empty if bits["required"] is None else pc.or_(bits["required"], empty)
        if reason is not None:
            bits[reason] = bad if bits[reason] is None else pc.or_(bits[reason], bad)
    total = pa.repeat(pa.scalar(0, pa.int32()), n)
    for reason, hit in bits.items():
        if hit is not None:
            total = pc.add(total, pc.if_else(hit, REASON_BIT[reason], 0).cast(pa.int32()))
    return total, parsed


def _quoted(v: pa.Array) -> pa.Array:
    # No '"' in an eligible file, so quoting is just the enclosing quotes.
    return pc.binary_join_element_wise('"', v, '"', "")


def check_block(block: bytes, first_line: int, layout: Layout) -> pa.RecordBatch:
    """One block of whole lines -> the checked batch (see the module docstring)."""
    entity = BY_NAME[layout.entity]
    positions = dict(layout.positions)
    table, odd = _parse(block, layout.width)
    repaired_rows: list[list[str]] = []
    repaired_at: list[int] = []
    short_rows: list[tuple[int, str]] = []
    for position, text in odd:
        parts = text.split(",")
        if layout.overflow_index is not None and len(parts) > layout.width:
            cut = layout.overflow_index
            repaired_rows.append([*parts[:cut], ",".join(parts[cut:])])
            repaired_at.append(position)
        else:
            short_rows.append((position, text))
    n_parsed = table.num_rows
    total_lines = n_parsed + len(odd)
    at = _positions_without(total_lines, [p for p, _ in odd])
    fields = [table.column(i).combine_chunks() for i in range(layout.width)]
    repaired = pa.repeat(False, n_parsed) if n_parsed else pa.array([], pa.bool_())
    if repaired_rows:
        extra = [pa.array([row[i] for row in repaired_rows], STRING) for i in range(layout.width)]
        fields = [pa.concat_arrays([f.cast(STRING), e]) for f, e in zip(fields, extra, strict=True)]
        at = pa.concat_arrays([at, pa.array(repaired_at, pa.int64())])
        repaired = pa.concat_arrays([repaired, pa.repeat(True, len(repaired_rows))])
    n = len(at)
    lines = pc.add(at, first_line)
    trim = b" " in block or b"\t" in block
    values = {}
    for name, index in positions.items():
        values[name] = pc.utf8_trim(fields[index], TRIM_CHARS) if trim else fields[index]
    mask, parsed = _mask(entity, values, n)
    if layout.id_base is None:
        ids = parsed[entity.id_column]  # parsed once, by the checks
    else:
        ids = pc.add(pc.subtract(lines, layout.header_line), layout.id_base)
    valid = pc.equal(mask, 0)
    all_valid = pc.all(valid).as_py() is not False
    if layout.binary:
        ok = _ok_rows(entity, values, parsed, ids, lines, repaired, None if all_valid else valid)
    else:
        id_text = values[entity.id_column] if layout.id_base is None else pc.cast(ids, STRING)
        ok = _ok_lines(entity, values, id_text, lines, repaired)
        ok = ok if all_valid else pc.if_else(valid, ok, _NULL_TEXT)
    if all_valid:
        rejected = pa.nulls(n, STRING)
    else:
        raw = pc.binary_join_element_wise(*fields, ",")
        rejected = pc.if_else(valid, _NULL_TEXT, _reject_lines(layout, lines, raw, mask))
    columns = [ok, rejected, mask, ids, repaired, lines]
    if short_rows:
        columns = _with_short_rows(columns, short_rows, first_line, layout)
    schema = BATCH_SCHEMA_BINARY if layout.binary else BATCH_SCHEMA
    return pa.RecordBatch.from_arrays(columns, schema=schema)


BATCH_SCHEMA = pa.schema(
    [
        pa.field("_ok_line", STRING),
        pa.field("_rej_line", STRING),
        pa.field("_mask", pa.int32()),
        pa.field("_id", pa.int64()),
        pa.field("_repaired", pa.bool_()),
        pa.field("_line", pa.int64()),
    ]
)
BATCH_SCHEMA_BINARY = BATCH_SCHEMA.set(0, pa.field("_ok_line", pa.binary()))

# The binary COPY kind of each column kind, and, for a value the checks did not parse, what
# an invalid row's text is replaced with so that the cast of the whole column succeeds (the
# row itself is not sent).
_BINARY_KIND: dict[str, tuple[Kind, pa.DataType | None, str]] = {
    "int": ("int4", pa.int64(), "0"),
    "date": ("date", pa.date32(), "2000-01-01"),
    "money": ("numeric", _AMOUNT_TYPE, "0"),
    "text": ("text", None, ""),
}


def _ok_rows(entity, values, parsed, ids, lines, repaired, valid: pa.Array | None) -> pa.Array:
    """The valid rows as binary COPY rows (null for the others), in the columns of
    ``validate.row_copy_columns(entity, lineage=False)``, from the values the checks parsed.
    The checks guarantee that every valid value fits its PostgreSQL type."""
    fields: list[tuple[Kind, pa.Array]] = []
    for column in entity.columns:
        if column.kind == "id":
            fields.append(("int4", ids))
            continue
        kind, arrow_type, placeholder = _BINARY_KIND[column.kind]
        v = parsed.get(column.name, values[column.name])
        if arrow_type is not None and column.name not in parsed:
            usable = v if valid is None else pc.if_else(valid, v, placeholder)
            v = pc.cast(usable, arrow_type)
        fields.append((kind, v))
    fields += [("int8", lines), ("bool", repaired)]
    return encode_rows(fields, valid)


def _ok_lines(entity, values, id_text, lines, repaired) -> pa.Array:
    parts: list = []
    for column in entity.columns:
        v = id_text if column.kind == "id" else values[column.name]
        parts.append(_quoted(v) if column.quoted_in_copy else v)
    parts.append(pc.cast(lines, STRING))
    # Bulk lines: the file name and load id are not in them (validate.row_copy_columns).
    any_repaired = pc.any(repaired).as_py() is True
    parts.append(pc.if_else(repaired, "t\n", "f\n") if any_repaired else "f\n")
    return pc.binary_join_element_wise(*parts, ",")


def _reject_lines(layout: Layout, lines: pa.Array, raw: pa.Array, mask: pa.Array) -> pa.Array:
    reasons = pc.take(_REASON_TEXT, mask)
    tail = f"{layout.entity},{csv_quote(layout.source_file)},{layout.load_id}\n"
    return pc.binary_join_element_wise(
        pc.cast(lines, STRING),
        _quoted(raw),
        pc.binary_join_element_wise('"{', reasons, '}"', ""),
        tail,
        ",",
    )


def _with_short_rows(columns, short_rows, first_line: int, layout: Layout) -> list[pa.Array]:
    """Append the lines whose field count is wrong (and not repairable): rejected with
    ``field_count`` alone; a positional id is still consumed."""
    lines = pa.array([first_line + p for p, _ in short_rows], pa.int64())
    raw = pa.array([text for _, text in short_rows], STRING)
    mask = pa.array([REASON_BIT["field_count"]] * len(short_rows), pa.int32())
    if layout.id_base is None:
        ids = pa.nulls(len(short_rows), pa.int64())
    else:
        ids = pc.add(pc.subtract(lines, layout.header_line), layout.id_base)
    extra = [
        pa.nulls(len(short_rows), STRING),
        _reject_lines(layout, lines, raw, mask),
        mask,
        ids,
        pa.repeat(False, len(short_rows)),
        lines,
    ]
    return [pa.concat_arrays([a, b.cast(a.type)]) for a, b in zip(columns, extra, strict=True)]
