"""Ingestion hazards an operator meets day after day, through the real loader, a
real PostgreSQL and real files: re-sent extracts, files changing under the loader, symbolic
links, quoting that used to be parsed in quadratic time."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from dbt_runner import run_dbt
from load_helpers import load, rows, scalar, write

from spark_loaders.domain import ENTITY_ORDER
from spark_loaders.ingest import file_load

SAMPLE = Path(__file__).resolve().parents[2] / "data" / "sample"
GOLD = ("transacoes_por_condominio", "transacoes_por_morador", "transacoes_diarias_por_tipo_imovel")


def _bronze(db) -> dict[str, list[tuple]]:
    return {e: rows(db, f"select * from bronze.{e} order by 1, _load_id") for e in ENTITY_ORDER}


def _layer(db, schema: str, names: tuple[str, ...]) -> dict[str, list[tuple]]:
    return {n: rows(db, f"select * from {schema}.{n} order by 1, 2") for n in names}


def _resent(data: bytes) -> bytes:
    """The same records as the source system would re-send them: BOM, CRLF, no final newline."""
    return b"\xef\xbb\xbf" + data.rstrip(b"\n").replace(b"\n", b"\r\n")


@pytest.mark.slow
def test_resent_extract_with_bom_and_crlf_does_not_double_gold(spark, fresh_db, tmp_path) -> None:
    first = load(spark, SAMPLE)
    assert [f.status for f in first.files] == ["loaded"] * 4
    run_dbt(["build"], workdir=tmp_path)
    bronze = _bronze(fresh_db)
    silver = _layer(fresh_db, "silver", ENTITY_ORDER)
    gold = _layer(fresh_db, "gold", GOLD)

    resent = tmp_path / "resent"
    for e in ENTITY_ORDER:
        write(resent / f"{e}_2024-06-02.csv", _resent((SAMPLE / f"{e}.csv").read_bytes()))
    second = load(spark, resent)
    assert [f.status for f in second.files] == ["skipped"] * 4
    # The ledger names the load each skipped file duplicates.
    assert rows(
        fresh_db,
        "select s.source_file, l.source_file, s.reason from ops.loads s "
        "join ops.loads l on l.load_id = s.duplicate_of where s.status = 'skipped' order by 1",
    ) == [(f"{e}_2024-06-02.csv", f"{e}.csv", "duplicate") for e in sorted(ENTITY_ORDER)]
    run_dbt(["build"], workdir=tmp_path)
    assert _bronze(fresh_db) == bronze
    assert _layer(fresh_db, "silver", ENTITY_ORDER) == silver
    assert _layer(fresh_db, "gold", GOLD) == gold

    # --force still replaces: the re-sent file becomes the loaded one, rows are not doubled.
    forced = load(spark, resent / "transacoes_2024-06-02.csv", force=True)
    assert forced.files[0].status == "loaded"
    assert scalar(fresh_db, "select count(*) from bronze.transacoes") == 22
    assert (
        scalar(
            fresh_db,
            "select count(*) from ops.loads where entity = 'transacoes' and status = 'replaced'",
        )
        == 1
    )


def test_a_file_changed_during_its_load_commits_nothing_and_is_retried(
    spark, fresh_db, tmp_path, monkeypatch
) -> None:
    path = write(
        tmp_path / "transacoes_live.csv",
        "imovel_id,morador_id,data_transacao,valor_transacao\n1,1,2024-03-01,1250.5",
    )
    original = file_load.verify_lines

    def writer_appends_meanwhile(expected_lines, stats):
        # The exporter is still writing: the rest of the amount and another row arrive after
        # the loader parsed what was there.
        with path.open("ab") as handle:
            handle.write(b"0\n2,2,2024-03-02,10.00\n")
        return original(expected_lines, stats)

    monkeypatch.setattr(file_load, "verify_lines", writer_appends_meanwhile)
    report = load(spark, path)
    result = report.files[0]
    assert result.status == "failed"
    assert result.reason == "changed_during_load"
    assert not report.ok
    assert scalar(fresh_db, "select count(*) from bronze.transacoes") == 0
    assert rows(fresh_db, "select status, reason from ops.loads") == [
        ("failed", "changed_during_load")
    ]

    monkeypatch.setattr(file_load, "verify_lines", original)
    again = load(spark, path)
    assert again.files[0].status == "loaded"
    assert rows(fresh_db, "select valor_transacao::text from bronze.transacoes order by 1") == [
        ("10.00",),
        ("1250.50",),
    ]


def test_a_file_truncated_under_the_vectorised_writers_is_a_changed_file(
    spark, fresh_db, tmp_path, monkeypatch
) -> None:
    """The writers read the file themselves: when it shrinks between the plan and the read,
    the load fails as changed_during_load (retried), not as a loader error."""
    monkeypatch.setenv("CONDO_LOAD_BULK_MIN_BYTES", "0")
    header = "imovel_id,morador_id,data_transacao,valor_transacao\n"
    body = "".join(f"{i},{i},2024-03-01,{i}.50\n" for i in range(1, 2001))
    path = write(tmp_path / "transacoes_shrinking.csv", header + body)
    original = file_load.plan_chunks
    planned = []

    def exporter_rewrites_meanwhile(*args, **kwargs):
        chunks = original(*args, **kwargs)
        planned.append(chunks)  # only the vectorised path plans chunks
        path.write_text(header + "1,1,2024-03-01,1.50\n")  # truncated and rewritten
        return chunks

    monkeypatch.setattr(file_load, "plan_chunks", exporter_rewrites_meanwhile)
    report = load(spark, path)
    assert planned and report.files[0].status == "failed"
    assert rows(fresh_db, "select status, reason from ops.loads") == [
        ("failed", "changed_during_load")
    ]
    assert scalar(fresh_db, "select count(*) from bronze.transacoes") == 0


def test_symlinks_are_refused_and_never_followed(spark, fresh_db, tmp_path) -> None:
    secret = write(tmp_path / "outside" / "secret.txt", "imovel_id,morador_id\nTOP-SECRET\n")
    landing = tmp_path / "landing"
    landing.mkdir()
    os.symlink(secret, landing / "transacoes_link.csv")
    write(
        landing / "transacoes_ok.csv",
        "imovel_id,morador_id,data_transacao,valor_transacao\n1,1,2024-03-01,1.00\n",
    )
    report = load(spark, landing)
    by_name = {f.path.name: f for f in report.files}
    assert by_name["transacoes_link.csv"].status == "rejected"
    assert by_name["transacoes_link.csv"].reason == "symlink"
    assert by_name["transacoes_ok.csv"].status == "loaded"
    ledger = rows(
        fresh_db, "select source_file, status, reason, error from ops.loads order by load_id"
    )
    assert ("transacoes_link.csv", "rejected", "symlink") in [r[:3] for r in ledger]
    assert not any("TOP-SECRET" in (r[3] or "") for r in ledger)
    # Named explicitly, a link is refused the same way.
    direct = load(spark, landing / "transacoes_link.csv")
    assert direct.files[0].reason == "symlink"
    assert scalar(fresh_db, "select count(*) from bronze.transacoes") == 1


def test_in_progress_names_are_not_loaded_from_a_directory(spark, fresh_db, tmp_path) -> None:
    body = "imovel_id,morador_id,data_transacao,valor_transacao\n1,1,2024-03-01,1.00\n"
    for name in (
        "transacoes.csv.tmp",
        "transacoes.csv.part",
        "transacoes.csv.crdownload",
        "transacoes.csv.filepart",
        "_transacoes.csv",
        ".transacoes.csv",
    ):
        write(tmp_path / name, body)
    write(tmp_path / "transacoes_done.csv", body)
    report = load(spark, tmp_path)
    assert [f.path.name for f in report.files] == ["transacoes_done.csv"]


def test_header_quotes_are_cut_to_200_characters(spark, fresh_db, tmp_path) -> None:
    # A quoted header field that runs into the data: the message quotes the header only,
    # cut to 200 characters, and never the data lines it swallowed.
    header = 'nome,"' + "x" * 500 + "\nSECRET-DATA-LINE\n" + '"\n'
    path = write(tmp_path / "moradores_long.csv", header + "Ana,1\n")
    report = load(spark, path)
    error = report.files[0].error
    assert report.files[0].status == "rejected"
    assert "header has:" in error
    quoted = error.split("header has: ", 1)[1]
    assert len(quoted) <= 201 and "SECRET-DATA-LINE" not in error


def test_an_older_ledger_gets_the_new_columns(fresh_db) -> None:
    import psycopg

    from spark_loaders.ingest.ddl import ensure_schema

    with psycopg.connect(fresh_db.url(), autocommit=True) as conn:
        ensure_schema(conn)
        # A database created before reason, duplicate_of and parser existed.
        conn.execute(
            "alter table ops.loads drop column reason, drop column duplicate_of, drop column parser"
        )
        ensure_schema(conn)
        columns = {
            r[0]
            for r in conn.execute(
                "select column_name from information_schema.columns "
                "where table_schema = 'ops' and table_name = 'loads'"
            )
        }
    assert {"reason", "duplicate_of", "parser"} <= columns


def test_a_ledger_written_with_byte_hashes_still_skips_the_same_file(spark, fresh_db) -> None:
    import hashlib

    first = load(spark, SAMPLE / "transacoes.csv")
    assert first.files[0].status == "loaded"
    # What the loader before the records identity wrote: the SHA-256 of the bytes.
    raw = hashlib.sha256((SAMPLE / "transacoes.csv").read_bytes()).hexdigest()
    rows(fresh_db, "update ops.loads set content_hash = %s returning 1", (raw,))
    again = load(spark, SAMPLE / "transacoes.csv")
    assert again.files[0].status == "skipped"
    assert scalar(fresh_db, "select count(*) from bronze.transacoes") == 22
