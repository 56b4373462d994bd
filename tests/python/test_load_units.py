"""Pure functions of the loader: the CSV dialect, header matching, discovery, id rules."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pytest
from defect_rows import DATES

from spark_loaders.domain import BY_NAME
from spark_loaders.errors import CondoError
from spark_loaders.ingest.copy_stream import Stats
from spark_loaders.ingest.csv_split import (
    MALFORMED,
    OPEN,
    UnterminatedQuote,
    iter_records,
    split_record,
)
from spark_loaders.ingest.discover import discover, entity_of
from spark_loaders.ingest.header import HeaderError, map_header
from spark_loaders.ingest.ids import id_outcome, positional_base
from spark_loaders.ingest.ledger import PreviousLoad
from spark_loaders.ingest.prescan import prescan
from spark_loaders.ingest.records_arrow import _parse_date, _parse_date_checked


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("a,b", ["a", "b"]),
        ("a,,b", ["a", "", "b"]),
        (",", ["", ""]),
        ("", [""]),
        ('"a,b",c', ["a,b", "c"]),
        ('"say ""hi""",x', ['say "hi"', "x"]),
        ('x,""', ["x", ""]),
        ('a,b"c,d', ["a", 'b"c', "d"]),  # a quote inside an unquoted field is literal
        ('a, "b,c"', ["a", ' "b', 'c"']),  # a field is quoted only if '"' is its first char
        ('"multi\nline",z', ["multi\nline", "z"]),
    ],
)
def test_split_record(text: str, expected: list[str]) -> None:
    assert split_record(text) == expected


def test_split_record_open_and_malformed() -> None:
    assert split_record('"abc') is OPEN
    assert split_record('"ab""') is OPEN  # the doubled quote is an escaped quote, still open
    assert split_record('"ab"c,d') is MALFORMED


def test_iter_records_line_numbers_blank_lines_and_quoted_newlines() -> None:
    lines = ["h1,h2", "", 'a,"x', 'y",z', "  \t", '"q"w,1', "last,1"]
    records = list(iter_records(lines))
    assert [(r.line, r.last_line) for r in records] == [(1, 1), (3, 4), (6, 6), (7, 7)]
    assert records[1].fields == ["a", "x\ny", "z"]
    assert records[1].raw == 'a,"x\ny",z'
    assert records[2].fields is None  # malformed quoting


def test_iter_records_unterminated_quote() -> None:
    with pytest.raises(UnterminatedQuote) as info:
        list(iter_records(["h", 'a,"never closed', "b"]))
    assert info.value.line == 2


def test_map_header_is_case_insensitive_and_order_free() -> None:
    cmap = map_header(BY_NAME["imoveis"], ["valor", "condominio_id", "tipo", "extra"])
    assert cmap.positions == {"tipo": 2, "condominio_id": 1, "valor": 0}
    assert not cmap.has_ids
    assert cmap.warnings and "extra" in cmap.warnings[0]


def test_map_header_missing_and_duplicated_columns() -> None:
    with pytest.raises(HeaderError, match=r"missing required column.*valor"):
        map_header(BY_NAME["imoveis"], ["tipo", "condominio_id"])
    with pytest.raises(HeaderError, match="duplicated"):
        map_header(BY_NAME["imoveis"], ["tipo", "tipo", "condominio_id", "valor"])


def test_overflow_applies_only_when_endereco_is_last() -> None:
    condominios = BY_NAME["condominios"]
    assert map_header(condominios, ["nome", "endereco"]).overflow_index == 1
    assert map_header(condominios, ["endereco", "nome"]).overflow_index is None
    assert map_header(condominios, ["nome", "endereco", "x"]).overflow_index is None
    assert (
        map_header(BY_NAME["moradores"], ["nome", "condominio_id", "data_registro"]).overflow_index
        is None
    )


def test_discover_order_and_matching(tmp_path: Path) -> None:
    for name in [
        "transacoes_2.csv",
        "Transacoes_1.csv",
        "imoveis.csv",
        "CONDOMINIOS.csv",
        "notes.txt",
        ".hidden_condominios.csv",
        "moradores-x.csv",
    ]:
        (tmp_path / name).write_text("x\n")
    names = [(f.entity, f.name) for f in discover([tmp_path])]
    assert names == [
        ("condominios", "CONDOMINIOS.csv"),
        ("imoveis", "imoveis.csv"),
        ("moradores", "moradores-x.csv"),
        ("transacoes", "Transacoes_1.csv"),
        ("transacoes", "transacoes_2.csv"),
    ]
    assert entity_of("condominio.csv") is None
    with pytest.raises(CondoError, match="does not start with an entity name"):
        discover([tmp_path / "notes.txt"])
    with pytest.raises(CondoError, match="no such file"):
        discover([tmp_path / "missing.csv"])


def test_positional_ids_and_high_water() -> None:
    stats = Stats(rows=5, loaded=4, rejected=1)
    assert positional_base(False, 10, None) == 10
    assert id_outcome(10, stats).__dict__ == {"id_min": 11, "id_max": 15, "high_water": 15}
    # A forced reload of a positional file reuses its ids, whatever the mark is now.
    previous = PreviousLoad(load_id=3, has_ids=False, id_min=11, id_max=15)
    assert positional_base(False, 40, previous) == 10
    assert positional_base(True, 40, previous) is None
    with_ids = Stats(rows=3, loaded=2, rejected=1, id_min=4, id_max=9, max_valid_id=12)
    assert id_outcome(None, with_ids).__dict__ == {"id_min": 4, "id_max": 9, "high_water": 12}
    assert id_outcome(7, Stats()).high_water is None


def test_prescan_detects_bad_utf8_and_nul(tmp_path: Path) -> None:
    good = tmp_path / "good.csv"
    good.write_bytes("\ufeffnome\nJoão\n".encode())
    assert prescan(good).encoding_error is None
    latin = tmp_path / "latin.csv"
    latin.write_bytes("nome\nok\nJoão\n".encode("latin-1"))
    error = prescan(latin).encoding_error
    assert error and "not valid UTF-8" in error and "line 3" in error
    utf16 = tmp_path / "utf16.csv"
    utf16.write_bytes("nome\nJoao\n".encode("utf-16-le"))
    assert "NUL byte" in (prescan(utf16).encoding_error or "")
    cut = tmp_path / "cut.csv"
    cut.write_bytes(b"nome\nJo" + "ã".encode()[:1])
    assert "multi-byte" in (prescan(cut).encoding_error or "")


def test_line_bytes_sends_only_the_non_null_lines() -> None:
    """A null slot made by if_else still covers the other branch's bytes in the buffer."""
    import pyarrow.compute as pc

    from spark_loaders.ingest.copy_stream import line_bytes

    lines = pa.array(["a\n", "bb\n", "c\n", "dd\n"])
    keep = pa.array([True, False, True, False])
    masked = pc.if_else(keep, lines, pa.scalar(None, pa.string()))
    assert bytes(line_bytes(masked)) == b"a\nc\n"
    assert bytes(line_bytes(masked.slice(1, 2))) == b"c\n"
    assert bytes(line_bytes(lines.slice(1, 2))) == b"bb\nc\n"


@pytest.mark.parametrize("chunk", [1, 2, 3, 5, 8 << 20])
def test_prescan_dialect_facts_hold_across_chunk_seams(tmp_path: Path, monkeypatch, chunk) -> None:
    """lone_cr and maybe_blank are found whichever chunk boundary splits the bytes that
    decide them (a CR ending one chunk, its LF starting the next). The content hash is the
    RecordDigest of a separate full pass, whichever chunk first shows a BOM, a CR or the
    blank tail: the pre-scan takes the bytes' SHA-256 for a file it finds canonical, and
    feeds or re-reads a RecordDigest otherwise."""
    import hashlib
    import re

    from spark_loaders.ingest import prescan as prescan_module

    monkeypatch.setattr(prescan_module, "CHUNK", chunk)
    samples = [
        b"a,b\r\n1,2\r\n",
        b"a,b\r\n1,2\r",
        b"a,b\r1,2\n",
        b"a,b\n1,2\n\n3,4\n",
        b"a,b\n 1,2\n",
        b"a,b\n1,2\n\r\n",
        b"\ta,b\n1,2",
        b"a,b\n1,2\n",
        b"a,b\n1,2\n \t\n\n",
        b"a,b\n1,2 \t\n",
        b"a,b\n1,2\n3,4\r\n5,6\n",
        b"\xef\xbb\xbfa,b\n1,2\n",
        b"\xef\xbb",
        b"\xef",
        b"",
        b"\n \n",
        b"\n",
        b"x",
    ]
    for data in samples:
        path = tmp_path / "f.csv"
        path.write_bytes(data)
        scan = prescan_module.prescan(path)
        assert scan.lone_cr == bool(re.search(rb"\r(?!\n)", data)), data
        assert scan.maybe_blank == bool(re.search(rb"(^|\n)[\n\r \t]", data)), data
        assert scan.sha256 == hashlib.sha256(data).hexdigest(), data
        assert scan.content_hash == prescan_module.record_digest(path), data
    path.write_bytes(b"a,b\n1,2\n")  # canonical: the ledger's older byte hashes still match
    assert prescan_module.prescan(path).content_hash == hashlib.sha256(b"a,b\n1,2\n").hexdigest()


def test_verify_lines_sees_a_duplicate_line_offset_by_a_lost_one() -> None:
    """Count, least and greatest line agree, but line 5 came twice and line 6 never: only the
    sum of the lines tells (the writer-thread race of the vectorised path did this)."""
    from spark_loaders.ingest.file_load import verify_lines

    def stats_of(lines: list[int]) -> Stats:
        return Stats(rows=len(lines), line_min=min(lines), line_max=max(lines), line_sum=sum(lines))

    verify_lines((2, 11), stats_of(list(range(2, 12))))
    broken = [line if line != 6 else 5 for line in range(2, 12)]
    with pytest.raises(RuntimeError, match="line numbering check failed"):
        verify_lines((2, 11), stats_of(broken))


@pytest.mark.parametrize(
    "text",
    [
        *DATES,
        "2023-01-01T00:00", "2023-01-01 00:00:00", "+2023-01-01", "-023-01-01", "2023-01-01Z",
        "99999-01-01", "2023-0a-01", "2023-01-+1", "\uff12\uff10\uff12\uff13-01-01", "2023-01-01\x00",
    ],
)  # fmt: skip
def test_date_fast_path_judges_each_value_as_the_checks_do(text: str) -> None:
    """A block of dates is first cast whole by Arrow, with no regex; one value alone takes
    that path whenever Arrow parses it. It must accept and read exactly what the per-value
    checks (shape, calendar, year 0001 on) accept."""
    values = pa.array([text], pa.string())
    fast_ok, fast_days = _parse_date(values)
    checked_ok, checked_days = _parse_date_checked(values)
    assert fast_ok.to_pylist() == checked_ok.to_pylist()
    if checked_ok[0].as_py():
        assert fast_days is not None and checked_days is not None
        assert fast_days[0] == checked_days[0]
