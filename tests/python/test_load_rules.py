"""Every row-level rule through real Spark and PostgreSQL, once with the small-file paths
(exact parser, direct COPY in the final transaction) and once with the large-file paths
(parallel Spark parser, per-load partition attached at commit), which must agree."""

from __future__ import annotations

import pytest
from load_helpers import load, rows, scalar, write
from pg_helpers import scratch_database

TRANSACOES = """transacao_id,imovel_id,morador_id,data_transacao,valor_transacao
1,1,1,2024-01-10,100.00
2,1,1,2024-01-10
3,1,1,2024-01-10,100.00,9
4,,1,2024-01-10,100.00
5,0,1,2024-01-10,100.00
6,-1,1,2024-01-10,100.00
7,2147483648,1,2024-01-10,100.00
8,1,1,2024-02-30,1.00
9,1,1,2024-1-05,1.00
10,1,1,2024-01-10,"1.000.000,00"
11,1,1,2024-01-10,1000.001
12,1,1,2024-01-10,-10
13,1,1,2024-01-10,0.00
14,1,1,2024-01-10,10000000000000.00
15,x, ,ontem,0
16, 2147483647 ,0007,2024-02-29,9999999999999.99
1,2,2,2023-12-31,0.01
17,1,1,2024-01-10,1e5
18,1.5,1,2024-01-10,5
19,1,1,0000-01-01,5"""

MORADORES = (
    "nome,condominio_id,data_registro\n"
    + "é" * 255
    + ",1,2024-01-01\n"
    + "é" * 256
    + ",1,2024-01-01\n"
    + "   ,1,2024-01-01\n"
    + '"",1,2024-01-01\n'
    + "  Ana  ,1,2024-01-01\n"
    + "Zé,1,2024-02-29"
)

IMOVEIS = (
    "tipo,condominio_id,valor\n"
    + "T" * 50
    + ",1,10.5\n"
    + "T" * 51
    + ",1,10.5\n"
    + "Casa,1,0001.50\n"
)


@pytest.fixture(scope="module", params=["exact-direct", "parallel-bulk"])
def rules_db(request, pg_server, spark, tmp_path_factory):
    """One database loaded with the rule files; returns (db, report)."""
    folder = tmp_path_factory.mktemp("rules")
    write(folder / "transacoes_rules.csv", TRANSACOES)
    write(folder / "moradores_rules.csv", MORADORES)
    write(folder / "imoveis_rules.csv", IMOVEIS)
    with scratch_database(pg_server, "t_rules") as info, pytest.MonkeyPatch.context() as mp:
        mp.setenv("CONDO_DATABASE_URL", info.url())
        if request.param == "parallel-bulk":
            mp.setenv("CONDO_LOAD_PARALLEL_MIN_BYTES", "0")
            mp.setenv("CONDO_LOAD_BULK_MIN_BYTES", "0")
        report = load(spark, folder)
        yield info, report


def reasons_by_line(db, entity: str) -> dict[int, list[str]]:
    return {
        line: reasons
        for line, reasons in rows(
            db,
            "select source_line, reasons from bronze.rejected_rows where entity = %s",
            (entity,),
        )
    }


def test_every_file_loaded_and_counts_balance(rules_db) -> None:
    db, report = rules_db
    assert [f.status for f in report.files] == ["loaded", "loaded", "loaded"]
    for f in report.files:
        assert f.rows_read == f.rows_loaded + f.rows_rejected
    ledger = rows(
        db,
        "select entity, rows_read, rows_loaded, rows_rejected from ops.loads order by load_id",
    )
    assert ledger == [("imoveis", 3, 2, 1), ("moradores", 6, 3, 3), ("transacoes", 20, 3, 17)]
    assert scalar(db, "select count(*) from bronze.transacoes") == 3
    assert scalar(db, "select count(*) from bronze.rejected_rows") == 21


def test_field_count(rules_db) -> None:
    db, _ = rules_db
    got = reasons_by_line(db, "transacoes")
    assert got[3] == ["field_count"]  # too few fields
    assert got[4] == ["field_count"]  # too many, and valor_transacao is no overflow column


def test_required(rules_db) -> None:
    db, _ = rules_db
    assert reasons_by_line(db, "transacoes")[5] == ["required"]
    moradores = reasons_by_line(db, "moradores")
    assert moradores[4] == ["required"]  # only spaces
    assert moradores[5] == ["required"]  # quoted empty string


def test_too_long(rules_db) -> None:
    db, _ = rules_db
    assert reasons_by_line(db, "moradores") == {3: ["too_long"], 4: ["required"], 5: ["required"]}
    assert reasons_by_line(db, "imoveis") == {3: ["too_long"]}
    # 255 multi-byte characters fit: the limit counts characters, not bytes.
    assert scalar(db, "select max(length(nome)) from bronze.moradores") == 255
    assert scalar(db, "select max(length(tipo)) from bronze.imoveis") == 50


def test_invalid_integer(rules_db) -> None:
    db, _ = rules_db
    got = reasons_by_line(db, "transacoes")
    for line in (6, 7, 8, 20):  # 0, -1, 2147483648, 1.5
        assert got[line] == ["invalid_integer"], line


def test_invalid_date(rules_db) -> None:
    db, _ = rules_db
    got = reasons_by_line(db, "transacoes")
    for line in (9, 10, 21):  # 2024-02-30, 2024-1-05, 0000-01-01
        assert got[line] == ["invalid_date"], line


def test_invalid_amount(rules_db) -> None:
    db, _ = rules_db
    got = reasons_by_line(db, "transacoes")
    for line in (11, 12, 13, 14, 15, 19):  # 1.000.000,00 1000.001 -10 0.00 1e13 1e5
        assert got[line] == ["invalid_amount"], line


def test_a_row_collects_all_reasons_in_order(rules_db) -> None:
    db, _ = rules_db
    assert reasons_by_line(db, "transacoes")[16] == [
        "required",
        "invalid_integer",
        "invalid_date",
        "invalid_amount",
    ]


def test_rejected_rows_keep_the_raw_line_and_lineage(rules_db) -> None:
    db, report = rules_db
    load_id = report.by_entity("transacoes")[0].load_id
    got = rows(
        db,
        "select source_file, raw_line, load_id, rejected_at = ("
        "  select _loaded_at from bronze.transacoes limit 1) "
        "from bronze.rejected_rows where entity = 'transacoes' and source_line = 11",
    )
    assert got == [("transacoes_rules.csv", '10,1,1,2024-01-10,"1.000.000,00"', load_id, True)]


def test_valid_values_are_trimmed_typed_and_never_coerced(rules_db) -> None:
    db, _ = rules_db
    got = rows(
        db,
        "select transacao_id, imovel_id, morador_id, data_transacao::text, valor_transacao::text,"
        " _source_file, _source_line from bronze.transacoes order by _source_line",
    )
    assert got == [
        (1, 1, 1, "2024-01-10", "100.00", "transacoes_rules.csv", 2),
        (16, 2147483647, 7, "2024-02-29", "9999999999999.99", "transacoes_rules.csv", 17),
        (1, 2, 2, "2023-12-31", "0.01", "transacoes_rules.csv", 18),  # duplicate id kept
    ]
    names = [r[0] for r in rows(db, "select nome from bronze.moradores order by _source_line")]
    assert names == ["é" * 255, "Ana", "Zé"]
    assert scalar(db, "select valor::text from bronze.imoveis where tipo = 'Casa'") == "1.50"


def test_positional_ids_count_rejected_rows(rules_db) -> None:
    db, _ = rules_db
    got = rows(db, "select morador_id, _source_line from bronze.moradores order by 1")
    assert got == [(1, 2), (5, 6), (6, 7)]
    assert rows(db, "select entity, high_water from ops.id_watermarks order by 1") == [
        ("condominios", 0),
        ("imoveis", 3),
        ("moradores", 6),
        # the largest valid id of the file; 2147483648 is not valid, 19 is (invalid date)
        ("transacoes", 19),
    ]


def test_env_paths_really_differ(rules_db, request) -> None:
    """Guard for the parametrisation: the large-file path really made a partition."""
    db, _ = rules_db
    partitions = scalar(
        db,
        "select count(*) from pg_inherits i join pg_class c on c.oid = i.inhrelid "
        "where c.relname like 'transacoes_l%%' and c.relkind = 'r'",
    )
    expected = 1 if "parallel" in request.node.callspec.params["rules_db"] else 0
    assert partitions == expected
