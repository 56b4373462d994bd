"""File-level behaviour of the loader through real Spark and PostgreSQL: the sample, re-runs,
--force, whole-file rejects, the CSV dialect's edge cases and the id high-water mark."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
from load_helpers import leftover_tables, load, rows, scalar, write

from spark_loaders.cli import main as condo

SAMPLE = Path(__file__).resolve().parents[2] / "data" / "sample"


def test_sample_loads_with_ids_and_repaired_addresses(spark, fresh_db) -> None:
    report = load(spark, SAMPLE)
    assert report.ok
    counts = {f.entity: (f.rows_read, f.rows_loaded, f.rows_rejected) for f in report.files}
    assert counts == {
        "condominios": (3, 3, 0),
        "imoveis": (36, 36, 0),
        "moradores": (39, 39, 0),
        "transacoes": (22, 22, 0),
    }
    for entity, id_column, n in (
        ("condominios", "condominio_id", 3),
        ("imoveis", "imovel_id", 36),
        ("moradores", "morador_id", 39),
        ("transacoes", "transacao_id", 22),
    ):
        ids = [r[0] for r in rows(fresh_db, f"select {id_column} from bronze.{entity} order by 1")]
        assert ids == list(range(1, n + 1)), entity
    # The k-th data row (physical line k + 1) got id k.
    assert (
        scalar(
            fresh_db, "select count(*) from bronze.moradores where _source_line <> morador_id + 1"
        )
        == 0
    )

    # Addresses: everything after the first comma of each line, as the source system had it.
    lines = (SAMPLE / "condominios.csv").read_text(encoding="utf-8").splitlines()[1:]
    expected = [(i, *line.split(",", 1), True) for i, line in enumerate(lines, start=1)]
    got = rows(
        fresh_db,
        "select condominio_id, nome, endereco, _repaired from bronze.condominios order by 1",
    )
    assert got == expected
    assert got[0][2] == "Rua das Palmeiras, 123, Centro"
    assert report.by_entity("condominios")[0].rows_repaired == 3

    # The content identity hashes the records with exactly one final newline; the sample's
    # transacoes.csv lacks it.
    data = (SAMPLE / "transacoes.csv").read_bytes()
    assert not data.endswith(b"\n")
    digest = hashlib.sha256(data + b"\n").hexdigest()
    ledger = rows(
        fresh_db,
        "select status, content_hash, size_bytes, has_ids, id_min, id_max, mode "
        "from ops.loads where entity = 'transacoes'",
    )
    assert ledger == [
        ("loaded", digest, (SAMPLE / "transacoes.csv").stat().st_size, False, 1, 22, "batch")
    ]
    # All rows of a file share their load's commit timestamp.
    assert scalar(fresh_db, "select count(distinct _loaded_at) from bronze.imoveis") == 1


def _snapshot(db) -> list[tuple]:
    return rows(
        db,
        "select 'c', condominio_id, nome, endereco from bronze.condominios union all "
        "select 't', transacao_id, data_transacao::text, valor_transacao::text from bronze.transacoes "
        "order by 1, 2",
    )


def test_rerun_is_a_noop_and_force_replaces_without_duplicates(spark, fresh_db) -> None:
    first = load(spark, SAMPLE)
    before = _snapshot(fresh_db)
    second = load(spark, SAMPLE)
    assert [f.status for f in second.files] == ["skipped"] * 4
    assert second.ok and second.rows_read == 0
    assert _snapshot(fresh_db) == before

    forced = load(spark, SAMPLE, force=True)
    assert [f.status for f in forced.files] == ["loaded"] * 4
    assert _snapshot(fresh_db) == before  # same rows, same ids: not duplicated, not renumbered
    old_ids = [f.load_id for f in first.files]
    new_ids = [f.load_id for f in forced.files]
    assert rows(fresh_db, "select distinct _load_id from bronze.transacoes") == [(new_ids[3],)]
    replaced = rows(
        fresh_db, "select load_id, replaced_by from ops.loads where status = 'replaced' order by 1"
    )
    assert replaced == list(zip(old_ids, new_ids, strict=True))
    assert rows(fresh_db, "select status, count(*) from ops.loads group by 1 order by 1") == [
        ("loaded", 4),
        ("replaced", 4),
        ("skipped", 4),
    ]
    assert rows(fresh_db, "select high_water from ops.id_watermarks order by entity") == [
        (3,),
        (36,),
        (39,),
        (22,),
    ]


def test_force_on_the_partition_path(spark, fresh_db, tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("CONDO_LOAD_PARALLEL_MIN_BYTES", "0")
    monkeypatch.setenv("CONDO_LOAD_BULK_MIN_BYTES", "0")
    path = write(tmp_path / "transacoes.csv", (SAMPLE / "transacoes.csv").read_bytes())
    first = load(spark, path)
    forced = load(spark, path, force=True)
    assert first.ok and forced.ok
    partitions = rows(
        fresh_db,
        "select c.relname from pg_inherits i join pg_class c on c.oid = i.inhrelid "
        "join pg_class p on p.oid = i.inhparent where p.relname = 'transacoes' order by 1",
    )
    assert partitions == [("transacoes_default",), (f"transacoes_l{forced.files[0].load_id}",)]
    assert scalar(fresh_db, "select count(*) from bronze.transacoes") == 22
    assert leftover_tables(fresh_db) == []
    # The replacing partition carries both bronze indexes, adopted from its staging table.
    new = f"transacoes_l{forced.files[0].load_id}"
    attached = rows(
        fresh_db,
        "select p.relname, c.relname from pg_inherits i join pg_class c on c.oid = i.inhrelid "
        "join pg_class p on p.oid = i.inhparent join pg_index x on x.indexrelid = c.oid "
        "where x.indrelid = %s::regclass order by 1",
        (f"bronze_loads.{new}",),
    )
    assert attached == [
        ("transacoes_id_idx", f"{new}_id_idx"),
        ("transacoes_loaded_at_brin", f"{new}_loaded_at_brin"),
    ]


@pytest.mark.parametrize("encoding", ["latin-1", "utf-16"])
def test_wrong_encoding_rejects_the_file_whole(spark, fresh_db, tmp_path, encoding) -> None:
    text = "nome,endereco\nCondomínio Á,Rua São João, 1\n"
    path = write(tmp_path / "condominios.csv", text.encode(encoding))
    assert condo(["load", "--quiet", str(path)]) == 1
    status, error = rows(fresh_db, "select status, error from ops.loads")[0]
    assert status == "rejected"
    assert "UTF-8" in error
    assert scalar(fresh_db, "select count(*) from bronze.condominios") == 0
    assert scalar(fresh_db, "select count(*) from bronze.rejected_rows") == 0


def test_missing_column_rejects_the_file_whole(spark, fresh_db, tmp_path) -> None:
    path = write(tmp_path / "imoveis.csv", "tipo,condominio_id\nCasa,1\n")
    report = load(spark, path)
    result = report.files[0]
    assert (result.status, result.rows_loaded) == ("rejected", 0)
    assert "missing required column(s): valor" in result.error
    assert not report.ok
    assert rows(fresh_db, "select status, rows_read from ops.loads") == [("rejected", 0)]
    assert scalar(fresh_db, "select count(*) from bronze.rejected_rows") == 0


def test_unterminated_quote_rejects_the_file_whole(spark, fresh_db, tmp_path) -> None:
    path = write(tmp_path / "condominios.csv", 'nome,endereco,andar\nA,"Rua 1\nB,Rua 2\n')
    result = load(spark, path).files[0]
    assert result.status == "rejected"
    assert "line 2" in result.error
    assert scalar(fresh_db, "select count(*) from bronze.condominios") == 0
    # The header was read before parsing failed: the ledger keeps what it said.
    assert rows(fresh_db, "select has_ids, warnings from ops.loads") == [
        (False, ["ignored unknown column(s): andar"])
    ]


QUIRKY = (
    "\ufeffNome , ENDERECO\r\n"  # BOM, CRLF, header case and spaces
    'A,"Rua 1, ""Bloco"" B\r\nsegunda linha"\r\n'  # quoted comma, quotes, newline
    "\r\n"  # blank line: skipped, not counted, keeps its line number
    "B,Rua 2, 10, Centro\r\n"  # unquoted commas in the last column: repaired
    "  \t \r\n"
    ",Rua 3\r\n"  # empty nome: required
    "C,Rua 4"  # no newline at the end
)


@pytest.mark.parametrize("parallel", [False, True], ids=["exact", "parallel"])
def test_quoted_newlines_bom_crlf_and_blank_lines(
    spark, fresh_db, tmp_path, monkeypatch, parallel
) -> None:
    if parallel:
        # The parallel parser must notice the multi-line record and hand the file over.
        monkeypatch.setenv("CONDO_LOAD_PARALLEL_MIN_BYTES", "0")
    path = write(tmp_path / "condominios_quirky.csv", QUIRKY)
    result = load(spark, path).files[0]
    assert (result.rows_read, result.rows_loaded, result.rows_rejected) == (4, 3, 1)
    got = rows(
        fresh_db,
        "select condominio_id, nome, endereco, _source_line, _repaired "
        "from bronze.condominios order by 1",
    )
    assert got == [
        (1, "A", 'Rua 1, "Bloco" B\nsegunda linha', 2, False),
        (2, "B", "Rua 2, 10, Centro", 5, True),
        (4, "C", "Rua 4", 8, False),
    ]
    assert rows(fresh_db, "select source_line, raw_line, reasons from bronze.rejected_rows") == [
        (7, ",Rua 3", ["required"])
    ]


@pytest.mark.parametrize("parallel", [False, True], ids=["exact", "parallel"])
def test_blank_lines_keep_line_numbers_and_do_not_take_ids(
    spark, fresh_db, tmp_path, monkeypatch, parallel
) -> None:
    if parallel:
        monkeypatch.setenv("CONDO_LOAD_PARALLEL_MIN_BYTES", "0")
    text = "\n\ntipo,condominio_id,valor\n\nCasa,1,10.00\n\n\nLoja,2,20.00\n\n"
    path = write(tmp_path / "imoveis.csv", text)
    result = load(spark, path).files[0]
    assert result.rows_read == 2
    assert rows(
        fresh_db, "select imovel_id, tipo, _source_line from bronze.imoveis order by 1"
    ) == [
        (1, "Casa", 5),
        (2, "Loja", 8),
    ]


def test_empty_and_header_only_files_load_nothing_without_error(spark, fresh_db, tmp_path) -> None:
    empty = write(tmp_path / "imoveis_empty.csv", b"")
    header_only = write(tmp_path / "moradores.csv", "nome,condominio_id,data_registro\n")
    assert condo(["load", "--quiet", str(empty), str(header_only)]) == 0
    assert rows(fresh_db, "select entity, status, rows_read from ops.loads order by 1") == [
        ("imoveis", "loaded", 0),
        ("moradores", "loaded", 0),
    ]


def test_extra_columns_are_ignored_with_a_warning(spark, fresh_db, tmp_path) -> None:
    path = write(
        tmp_path / "moradores.csv", "obs,DATA_REGISTRO,nome,condominio_id\nx,2024-01-02,Ana,3\n"
    )
    result = load(spark, path).files[0]
    assert result.status == "loaded"
    assert result.warnings == ["ignored unknown column(s): obs"]
    assert rows(
        fresh_db,
        "select morador_id, nome, condominio_id, data_registro::text from bronze.moradores",
    ) == [(1, "Ana", 3, "2024-01-02")]
    assert rows(fresh_db, "select warnings from ops.loads") == [
        (["ignored unknown column(s): obs"],)
    ]


def test_file_with_ids_then_positional_file_uses_the_high_water_mark(
    spark, fresh_db, tmp_path
) -> None:
    write(
        tmp_path / "transacoes_1.csv",
        "transacao_id,imovel_id,morador_id,data_transacao,valor_transacao\n"
        "5,1,1,2024-01-01,1.00\n"
        "40,1,1,2024-01-32,1.00\n"  # rejected (date) but its id counts
        "900,1,1,2024-01-01\n"  # wrong field count: its id does not count
        "7,1,1,2024-01-01,1.00\n",
    )
    positional = write(
        tmp_path / "transacoes_2.csv",
        "imovel_id,morador_id,data_transacao,valor_transacao\n"
        "1,1,2024-02-01,2.00\n"
        "x,1,2024-02-01,2.00\n"  # rejected: still takes id 42
        "1,1,2024-02-01,3.00\n",
    )
    report = load(spark, tmp_path)
    assert [f.path.name for f in report.files] == ["transacoes_1.csv", "transacoes_2.csv"]
    assert rows(
        fresh_db, "select transacao_id, _source_file from bronze.transacoes order by 1"
    ) == [
        (5, "transacoes_1.csv"),
        (7, "transacoes_1.csv"),
        (41, "transacoes_2.csv"),
        (43, "transacoes_2.csv"),
    ]
    assert (
        scalar(fresh_db, "select high_water from ops.id_watermarks where entity = 'transacoes'")
        == 43
    )
    assert rows(fresh_db, "select id_min, id_max from ops.loads order by load_id") == [
        (5, 7),
        (41, 43),
    ]

    # A later file with ids below the mark leaves it alone; reloading never reassigns ids.
    write(
        tmp_path / "transacoes_3.csv",
        "transacao_id,imovel_id,morador_id,data_transacao,valor_transacao\n10,1,1,2024-03-01,1.00\n",
    )
    load(spark, tmp_path / "transacoes_3.csv")
    load(spark, positional, force=True)
    assert (
        scalar(fresh_db, "select high_water from ops.id_watermarks where entity = 'transacoes'")
        == 43
    )
    assert [
        r[0]
        for r in rows(
            fresh_db,
            "select transacao_id from bronze.transacoes where _source_file = 'transacoes_2.csv' order by 1",
        )
    ] == [41, 43]


def test_max_reject_rate_turns_row_rejects_into_a_failure(spark, fresh_db, tmp_path) -> None:
    path = write(
        tmp_path / "imoveis.csv",
        "tipo,condominio_id,valor\nCasa,1,1.00\nCasa,1,-1\nLoja,2,2.00\nApto,3,3.00\n",
    )
    assert condo(["load", "--quiet", str(path)]) == 0  # row rejects alone are not an error
    assert condo(["load", "--quiet", "--force", "--max-reject-rate", "0.25", str(path)]) == 0
    assert condo(["load", "--quiet", "--force", "--max-reject-rate", "0.2", str(path)]) == 1


@pytest.mark.parametrize("variant", ["plain", "blank-lines-and-quotes"])
def test_parallel_parser_numbers_lines_across_many_splits(
    spark, fresh_db, tmp_path, monkeypatch, variant
) -> None:
    """Small splits force many blocks: line numbers and positional ids must still be exact,
    both when they come from the planned splits (plain) and from the counting pass."""
    monkeypatch.setenv("CONDO_LOAD_PARALLEL_MIN_BYTES", "0")
    monkeypatch.setenv("CONDO_LOAD_BULK_MIN_BYTES", "0")
    lines = ["tipo,condominio_id,valor"]
    expected = []  # (id, line)
    ordinal = 0
    for i in range(20_000):
        if variant != "plain" and i % 997 == 0:
            lines.append("")  # a blank line: keeps its number, takes no id
            continue
        line_no = len(lines) + 1
        tipo = f'"L{line_no}, q"' if variant != "plain" and i % 3 == 0 else f"L{line_no}"
        lines.append(f"{tipo},{i % 50 + 1},{i + 1}.00")
        ordinal += 1
        expected.append((ordinal, line_no))
    path = write(tmp_path / "imoveis.csv", "\n".join(lines) + "\n")
    previous = {k: spark.conf.get(k) for k in ("spark.sql.files.maxPartitionBytes",)}
    spark.conf.set("spark.sql.files.maxPartitionBytes", "32k")
    try:
        assert spark.read.text(str(path)).rdd.getNumPartitions() > 5
        result = load(spark, path).files[0]
    finally:
        for key, value in previous.items():
            spark.conf.set(key, value)
    assert (result.status, result.rows_read, result.rows_rejected) == ("loaded", len(expected), 0)
    got = rows(fresh_db, "select imovel_id, _source_line, tipo from bronze.imoveis order by 1")
    assert [(i, line) for i, line, _ in got] == expected
    assert all(tipo.startswith(f"L{line}") for _, line, tipo in got)
