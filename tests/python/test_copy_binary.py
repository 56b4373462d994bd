"""The binary COPY encoder, with PostgreSQL itself as the oracle: the same values sent as
binary rows and as CSV text must give identical tables."""

from __future__ import annotations

import csv
import io

import psycopg
import pyarrow as pa
import pyarrow.compute as pc
import pytest

from spark_loaders.ingest.copy_binary import _BLOCK_ROWS, SIGNATURE, TRAILER, encode_rows
from spark_loaders.ingest.copy_stream import copy_batches

# One column per kind, text fields in the middle, adjacent and last, so that every way a row
# splits into fixed-width pieces and text is used.
COLUMNS = [
    ("a", "int4", "integer"),
    ("t1", "text", "text"),
    ("t2", "text", "varchar(50)"),
    ("d", "date", "date"),
    ("m", "numeric", "numeric(15,2)"),
    ("b", "int8", "bigint"),
    ("r", "bool", "boolean"),
    ("t3", "text", "text"),
]
ROWS = [
    ("1", "x", "é ünïcødé", "0001-01-01", "0.01", "1", "f", "last"),
    ("2147483647", "a,b", "", "1999-12-31", "5", "9223372036854775807", "t", 'with "quote"'),
    ("7", "long " * 200, "tab\there", "2000-01-01", "5.5", "-3", "f", "x"),
    ("0012", "y", "z", "2024-02-29", "0012.34", "0", "t", "€"),
    ("42", "y", "z", "9999-12-31", "9999999999999.99", "2", "f", "y"),
    ("43", "y", "z", "2000-01-02", "10000", "2", "f", "y"),
    ("44", "y", "z", "1970-01-01", "100000000.1", "2", "f", "y"),
    ("45", "y", "z", "2026-11-30", "1.05", "2", "t", "y"),
    ("46", "y", "z", "1600-03-01", "123456789012.34", "2", "t", "y"),
]


def _arrow_values(kind: str, texts: list[str]) -> pa.Array:
    strings = pa.array(texts, pa.string())
    if kind in ("int4", "int8"):
        return pc.cast(strings, pa.int64())
    if kind == "date":
        return pc.cast(strings, pa.date32())
    if kind == "numeric":
        return pc.cast(strings, pa.decimal128(15, 2))
    if kind == "bool":
        return pa.array([t == "t" for t in texts], pa.bool_())
    return strings


def _tables(conn: psycopg.Connection) -> None:
    ddl = ", ".join(f"{name} {pg} not null" for name, _, pg in COLUMNS)
    conn.execute(f"create table via_text ({ddl})")
    conn.execute(f"create table via_binary ({ddl})")


def _rows_of(conn: psycopg.Connection, table: str) -> list[tuple]:
    return conn.execute(f"select t::text from {table} t order by a").fetchall()


def _copy_binary(conn: psycopg.Connection, rows: pa.Array) -> None:
    with conn.cursor() as cursor:
        statement = "copy via_binary from stdin (format binary)"
        copy_batches(cursor, statement, [rows], header=SIGNATURE, trailer=TRAILER)


def _load_both_ways(conn: psycopg.Connection, rows: list[tuple]) -> None:
    """The rows into via_text as CSV and into via_binary as encoded binary rows."""
    fields = [
        (kind, _arrow_values(kind, [row[i] for row in rows]))
        for i, (_, kind, _) in enumerate(COLUMNS)
    ]
    out = io.StringIO()
    csv.writer(out, lineterminator="\n", quoting=csv.QUOTE_ALL).writerows(rows)
    _tables(conn)
    with conn.cursor().copy("copy via_text from stdin (format csv)") as copy:
        copy.write(out.getvalue())
    _copy_binary(conn, encode_rows(fields))


def test_binary_rows_equal_text_rows(fresh_db) -> None:
    with psycopg.connect(**fresh_db.psycopg_kwargs(), autocommit=True) as conn:
        _load_both_ways(conn, ROWS)
        expected = _rows_of(conn, "via_text")
        assert len(expected) == len(ROWS)
        assert _rows_of(conn, "via_binary") == expected
        # The stored numerics are the text path's, down to their display scale.
        scales = conn.execute(
            "select count(*) from via_text t join via_binary b using (a) "
            "where scale(t.m) <> scale(b.m) or t.m <> b.m"
        ).fetchone()[0]
        assert scales == 0


def test_invalid_rows_are_null_and_not_sent(fresh_db) -> None:
    """Rows flagged invalid may hold nulls (values that did not parse); they come out null
    and COPY skips them, the others arrive intact."""
    n = len(ROWS)
    valid = pa.array([i % 3 != 1 for i in range(n)])
    fields = []
    for i, (_, kind, _) in enumerate(COLUMNS):
        values = _arrow_values(kind, [row[i] for row in ROWS])
        fields.append((kind, pc.if_else(valid, values, pa.scalar(None, values.type))))
    rows = encode_rows(fields, valid)
    assert rows.null_count == n - valid.true_count
    with psycopg.connect(**fresh_db.psycopg_kwargs(), autocommit=True) as conn:
        _tables(conn)
        _copy_binary(conn, rows)
        loaded = [r[0] for r in conn.execute("select a from via_binary order by a")]
    kept = sorted(int(ROWS[i][0]) for i in range(n) if valid[i].as_py())
    assert loaded == kept


@pytest.mark.parametrize("cents", [1, 99, 100, 10_000, 999_999_999_999_999, 123_456_789_012_345])
def test_numeric_digits(cents: int) -> None:
    """The five base-10000 digits rebuild the amount (a pure check of the layout)."""
    values = pc.cast(pa.array([f"{cents // 100}.{cents % 100:02d}"]), pa.decimal128(15, 2))
    row = encode_rows([("numeric", values)]).to_pylist()[0]
    words = [int.from_bytes(row[i : i + 2], "big", signed=True) for i in range(6, len(row), 2)]
    ndigits, weight, sign, dscale, *digits = words
    assert (ndigits, weight, sign, dscale) == (5, 3, 0, 2)
    total = sum(d * 10000 ** (weight - k) for k, d in enumerate(digits[:-1])) * 100
    assert total + digits[-1] // 100 == cents


def test_rows_across_build_blocks(fresh_db) -> None:
    """Rows are built in blocks of cache-sized runs; a run of rows longer than two blocks,
    ending part-way into a third, arrives intact, with text fields splitting every row."""
    n = 2 * _BLOCK_ROWS + 123
    rows = [
        (
            str(i + 1),
            f"t{i}",
            "x" * (i % 7),
            f"{1900 + i % 200:04d}-{1 + i % 12:02d}-{1 + i % 28:02d}",
            f"{(i * 7919) % 10**13}.{i % 100:02d}",
            str(i * 3 - n),
            "t" if i % 2 else "f",
            "",
        )
        for i in range(n)
    ]
    with psycopg.connect(**fresh_db.psycopg_kwargs(), autocommit=True) as conn:
        _load_both_ways(conn, rows)
        differ = conn.execute(
            "select count(*) from ((table via_text except all table via_binary) "
            "union all (table via_binary except all table via_text)) d"
        ).fetchone()[0]
        count = conn.execute("select count(*) from via_binary").fetchone()[0]
    assert (count, differ) == (n, 0)
