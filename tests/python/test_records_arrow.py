"""The vectorised checker (records_arrow) against the Spark checker on the same bytes.

The Spark path (``parse_file`` + ``validate.check`` + ``validate.copy_lines``) defines what a
load writes; the pyarrow path must write the same COPY lines, reject lines, masks, ids and
line numbers for every row of files full of defects. Both run for real: one SparkSession,
pyarrow compute."""

from __future__ import annotations

import random
from pathlib import Path

import pyarrow as pa
import pytest

from spark_loaders.ingest.entities import BY_NAME
from spark_loaders.ingest.header import map_header
from spark_loaders.ingest.parse import parse_file
from spark_loaders.ingest.prescan import prescan, read_header
from spark_loaders.ingest.records_arrow import (
    Layout,
    check_block,
    eligible,
    plan_chunks,
    read_blocks,
)
from spark_loaders.ingest.validate import check, copy_lines

pytestmark = pytest.mark.spark

INTEGERS = [
    "1", "42", "007", "2147483647", "2147483648", "0", "00", "-5", "+5", "1.0", "abc", "1e3",
    "0000000000000000000000001", "99999999999999999999999", " 12 ", "\t9", "١٢", "",
]  # fmt: skip
DATES = [
    "2023-01-01", "2024-02-29", "2023-02-29", "1900-02-29", "2000-02-29", "0000-01-01",
    "0001-01-01", "9999-12-31", "2023-13-01", "2023-00-10", "2023-04-31", "2023-04-30",
    "2023-1-1", "20230101", "2023/01/01", " 2023-05-05 ", "2023-05-05x", "",
]  # fmt: skip
AMOUNTS = [
    "1", "0", "0.00", "0.01", "1.5", "1.55", "1.555", "1.", ".5", "9999999999999.99",
    "10000000000000", "0000000000000001.50", "-1.00", "1,5", "abc", " 3.25 ", "",
]  # fmt: skip
TEXTS = ["Casa", "Apartamento", "ação", "x" * 50, "y" * 51, " pad ", "", "\tTab"]


def _rows(rng: random.Random, entity: str, ids: bool, n: int) -> list[str]:
    lines = []
    for k in range(1, n + 1):
        if entity == "transacoes":
            fields = [rng.choice(INTEGERS), rng.choice(INTEGERS), rng.choice(DATES)]
            fields.append(rng.choice(AMOUNTS))
        elif entity == "imoveis":
            fields = [rng.choice(TEXTS), rng.choice(INTEGERS), rng.choice(AMOUNTS)]
        elif entity == "moradores":
            fields = [rng.choice(TEXTS) * rng.choice([1, 60]), rng.choice(INTEGERS)]
            fields.append(rng.choice(DATES))
        else:  # condominios: the address may hold unquoted commas
            fields = [rng.choice(TEXTS), ", ".join(rng.choice(TEXTS) for _ in range(3))]
        if ids:
            fields.insert(0, rng.choice([str(k)] * 8 + INTEGERS))
        shape = rng.random()
        if shape < 0.03:
            fields = fields[:-1]  # a field short
        elif shape < 0.06:
            fields = [*fields, "extra"]  # a field too many
        # A line that starts with a space or tab may be blank: such files take the Spark path.
        lines.append(",".join(fields).lstrip(" \t") or "x")
    return lines


def _write(path: Path, header: str, lines: list[str], *, crlf: bool, final_newline: bool) -> None:
    end = "\r\n" if crlf else "\n"
    text = end.join([header, *lines]) + (end if final_newline else "")
    path.write_bytes(text.encode())


def _spark_batches(spark, path: Path, entity_name: str, id_base: int | None) -> dict:
    entity = BY_NAME[entity_name]
    scan = prescan(path)
    header = read_header(path)
    cmap = map_header(entity, header.names)
    parsed = parse_file(spark, path, header.record, scan)
    checked = check(parsed.records, entity, cmap, id_base=id_base)
    lines = copy_lines(checked, entity, source_file="f.csv", load_id=7)
    return {row["_line"]: row.asDict() for row in lines.collect()}


def _arrow_batches(path: Path, entity_name: str, id_base: int | None, pieces: int) -> dict:
    entity = BY_NAME[entity_name]
    scan = prescan(path)
    header = read_header(path)
    assert eligible(scan, header.record.line, header.record.last_line)
    cmap = map_header(entity, header.names)
    layout = Layout(
        entity=entity.name,
        positions=tuple(cmap.positions.items()),
        width=cmap.width,
        overflow_index=cmap.overflow_index,
        id_base=id_base,
        header_line=header.record.line,
        source_file="f.csv",
        load_id=7,
    )
    batches = [
        check_block(block, first_line, layout)
        for chunk in plan_chunks(path, scan, pieces=pieces)
        for first_line, block in read_blocks(str(path), chunk, block_bytes=997)
    ]
    table = pa.Table.from_batches(batches)
    rows = table.to_pylist()
    by_line = {row["_line"]: row for row in rows}
    assert len(by_line) == len(rows), "a line was produced twice"
    return by_line


@pytest.mark.parametrize(
    ("entity", "ids", "crlf", "final_newline", "seed"),
    [
        ("transacoes", False, False, True, 1),
        ("transacoes", True, True, False, 2),
        ("imoveis", True, False, False, 3),
        ("moradores", False, True, True, 4),
        ("condominios", True, False, True, 5),
        ("condominios", False, True, True, 6),
    ],
)
def test_arrow_checker_writes_what_the_spark_checker_writes(
    spark, tmp_path: Path, entity: str, ids: bool, crlf: bool, final_newline: bool, seed: int
) -> None:
    rng = random.Random(seed)
    columns = [c.name for c in BY_NAME[entity].columns]
    header = ",".join(columns if ids else columns[1:])
    path = tmp_path / f"{entity}.csv"
    _write(path, header, _rows(rng, entity, ids, 600), crlf=crlf, final_newline=final_newline)
    id_base = None if ids else 1000
    expected = _spark_batches(spark, path, entity, id_base)
    got = _arrow_batches(path, entity, id_base, pieces=3)
    assert sorted(got) == sorted(expected)
    rejected = sum(1 for row in expected.values() if row["_mask"])
    assert 0 < rejected < len(expected), "the file must hold both valid and rejected rows"
    for line, row in expected.items():
        assert got[line] == row, f"line {line}"


def test_chunks_tile_the_data_lines(tmp_path: Path) -> None:
    path = tmp_path / "t.csv"
    _write(
        path, "a,b", [f"{i},{i}" * (i % 7 + 1) for i in range(500)], crlf=False, final_newline=False
    )
    scan = prescan(path)
    for pieces in (1, 2, 5, 40):
        chunks = plan_chunks(path, scan, pieces=pieces)
        assert chunks[0].start == 4 and chunks[-1].end == scan.size
        lines = []
        for chunk in chunks:
            for first, block in read_blocks(str(path), chunk, block_bytes=64):
                lines += list(
                    range(first, first + block.count(b"\n") + (not block.endswith(b"\n")))
                )
        assert lines == list(range(2, 502))
