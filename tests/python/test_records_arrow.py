"""The vectorised checker (records_arrow) against the Spark checker on the same bytes.

The Spark path (``parse_file`` + ``validate.check`` + ``validate.copy_lines``) defines what a
load writes; the pyarrow path must write the same COPY lines, reject lines, masks, ids and
line numbers for every row of files full of defects. Both run for real: one SparkSession,
pyarrow compute."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pytest
from defect_rows import write_defect_file

from spark_loaders.domain import BY_NAME
from spark_loaders.ingest.copy_stream import line_bytes
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


def _spark_batches(spark, path: Path, entity_name: str, id_base: int | None) -> dict:
    entity = BY_NAME[entity_name]
    scan = prescan(path)
    header = read_header(path)
    cmap = map_header(entity, header.names)
    parsed = parse_file(spark, path, header.record, scan)
    checked = check(parsed.records, entity, cmap, id_base=id_base)
    lines = copy_lines(checked, entity, source_file="f.csv", load_id=7, lineage=False)
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
        binary=False,  # CSV lines, to compare with the Spark path's line by line
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
    # What the writers send is the Arrow buffers, not the Python values: they must agree.
    for column in ("_ok_line", "_rej_line"):
        sent = b"".join(bytes(line_bytes(b.column(column))) for b in batches).decode()
        values = [row[column] for row in rows if row[column] is not None]
        assert sorted(line + "\n" for line in sent.split("\n")[:-1]) == sorted(values)
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
    path = write_defect_file(
        tmp_path / f"{entity}.csv",
        entity,
        ids=ids,
        rows=600,
        seed=seed,
        crlf=crlf,
        final_newline=final_newline,
    )
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
    lines = [f"{i},{i}" * (i % 7 + 1) for i in range(500)]
    path.write_text("a,b\n" + "\n".join(lines))
    scan = prescan(path)
    for pieces in (1, 2, 5, 40):
        chunks = plan_chunks(path, scan, pieces=pieces)
        assert chunks[0].start == 4 and chunks[-1].end == scan.size
        seen = []
        for chunk in chunks:
            for first, block in read_blocks(str(path), chunk, block_bytes=64):
                count = block.count(b"\n") + (not block.endswith(b"\n"))
                seen += list(range(first, first + count))
        assert seen == list(range(2, 502))
