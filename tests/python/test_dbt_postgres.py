"""End-to-end tests of the dbt project on the postgres target: real PostgreSQL, real dbt.

Expected numbers are computed here from the CSV files with Python's Decimal, independently
of the SQL, or written down from the case's specification.
"""

from __future__ import annotations

import csv
import datetime as dt
import json
import re
from collections import defaultdict
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path

import dbt_bronze as bronze
import psycopg
import pytest
from dbt_runner import run_dbt

from spark_loaders.connection import ConnectionInfo

SAMPLE_DIR = Path(__file__).resolve().parents[2] / "data" / "sample"

SILVER_GOLD_TABLES = (
    "silver.condominios",
    "silver.imoveis",
    "silver.moradores",
    "silver.transacoes",
    "silver.int_transacoes_por_imovel",
    "gold.transacoes_por_condominio",
    "gold.transacoes_por_morador",
    "gold.transacoes_diarias_por_tipo_imovel",
)

GOLD_TYPES = {
    "transacoes_por_condominio": [
        ("condominio_id", "integer"),
        ("nome_condominio", "character varying(255)"),
        ("qtd_transacoes", "bigint"),
        ("valor_total", "numeric(20,2)"),
    ],
    "transacoes_por_morador": [
        ("morador_id", "integer"),
        ("nome_morador", "character varying(255)"),
        ("condominio_id", "integer"),
        ("qtd_transacoes", "bigint"),
        ("valor_total", "numeric(20,2)"),
    ],
    "transacoes_diarias_por_tipo_imovel": [
        ("data_transacao", "date"),
        ("tipo_imovel", "character varying(50)"),
        ("qtd_transacoes", "bigint"),
        ("valor_total", "numeric(20,2)"),
        ("valor_medio", "numeric(15,2)"),
    ],
}


def query(db: ConnectionInfo, sql: str) -> list[tuple]:
    with psycopg.connect(**db.psycopg_kwargs()) as conn:
        return conn.execute(sql).fetchall()


def snapshot(db: ConnectionInfo) -> dict[str, list[tuple]]:
    """Every silver and gold table, rows sorted: what 'identical results' compares."""
    return {
        table: sorted(query(db, f"select * from {table}"), key=repr) for table in SILVER_GOLD_TABLES
    }


def _csv(name: str) -> list[list[str]]:
    with (SAMPLE_DIR / name).open(newline="", encoding="utf-8") as handle:
        rows = list(csv.reader(handle))
    return rows[1:]


def expected_daily_from_csv() -> dict[tuple[dt.date, str], tuple[int, Decimal, Decimal]]:
    tipos = {i: row[0] for i, row in enumerate(_csv("imoveis.csv"), start=1)}
    groups: dict[tuple[dt.date, str], list[Decimal]] = defaultdict(list)
    for imovel_id, _morador, day, valor in _csv("transacoes.csv"):
        groups[(dt.date.fromisoformat(day), tipos[int(imovel_id)])].append(Decimal(valor))
    return {
        key: (
            len(values),
            sum(values),
            (sum(values) / len(values)).quantize(Decimal("0.01"), rounding=ROUND_HALF_UP),
        )
        for key, values in groups.items()
    }


def expected_por_morador_from_csv() -> dict[int, tuple[int, Decimal]]:
    totals = {i: (0, Decimal("0.00")) for i in range(1, len(_csv("moradores.csv")) + 1)}
    for _imovel, morador_id, _day, valor in _csv("transacoes.csv"):
        count, total = totals[int(morador_id)]
        totals[int(morador_id)] = (count + 1, total + Decimal(valor))
    return totals


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    return tmp_path


def test_sample_through_the_loader_gives_the_case_numbers(fresh_db, spark, workdir):
    """data/sample loaded by the real loader, then `dbt build` (models and every test)."""
    from spark_loaders.ingest.api import ingest_files

    report = ingest_files(spark, [SAMPLE_DIR], target="postgres", progress=False)
    assert all(f.status == "loaded" for f in report.files), report.files

    run_dbt(["build"], workdir=workdir)

    assert query(
        fresh_db,
        "select condominio_id, nome_condominio, qtd_transacoes, valor_total "
        "from gold.transacoes_por_condominio order by condominio_id",
    ) == [
        (1, "Condomínio A", 11, Decimal("10655000.00")),
        (2, "Condomínio B", 10, Decimal("9865000.00")),
        (3, "Condomínio C", 1, Decimal("1080000.00")),
    ]
    daily = {
        (d, t): (q, v, m)
        for d, t, q, v, m in query(
            fresh_db,
            "select data_transacao, tipo_imovel, qtd_transacoes, valor_total, valor_medio "
            "from gold.transacoes_diarias_por_tipo_imovel",
        )
    }
    assert daily == expected_daily_from_csv()
    por_morador = query(
        fresh_db,
        "select morador_id, qtd_transacoes, valor_total from gold.transacoes_por_morador",
    )
    assert {m: (q, v) for m, q, v in por_morador} == expected_por_morador_from_csv()

    for model, columns in GOLD_TYPES.items():
        actual = query(
            fresh_db,
            "select a.attname, format_type(a.atttypid, a.atttypmod) from pg_attribute a "
            f"where a.attrelid = 'gold.{model}'::regclass and a.attnum > 0 "
            "and not a.attisdropped order by a.attnum",
        )
        assert actual == columns, model
    # Exactly the three gold relations, in a schema named gold; silver likewise.
    relations = query(
        fresh_db,
        "select table_schema, table_name from information_schema.tables "
        "where table_schema in ('silver', 'gold') order by 1, 2",
    )
    assert relations == [
        ("gold", "transacoes_diarias_por_tipo_imovel"),
        ("gold", "transacoes_por_condominio"),
        ("gold", "transacoes_por_morador"),
        ("silver", "condominios"),
        ("silver", "imoveis"),
        ("silver", "incremental_watermarks"),
        ("silver", "int_transacoes_por_imovel"),
        ("silver", "moradores"),
        ("silver", "orfaos"),
        ("silver", "tipos_imovel"),
        ("silver", "transacoes"),
    ]


# Build models and seeds without the data tests (the end-to-end test above runs those).
MODELS_AND_SEEDS = [
    "build",
    "--exclude-resource-type",
    "test",
    "--exclude-resource-type",
    "unit_test",
]
D = {i: dt.date(2024, 5, i) for i in range(1, 10)}


def first_load() -> bronze.Load:
    return bronze.Load(
        1,
        dt.datetime.now(dt.UTC) - dt.timedelta(days=1),
        {
            "condominios": [(1, "Alpha", "Rua 1"), (2, "Beta", "Rua 2")],
            "imoveis": [
                (10, "Casa", 1, Decimal("100.00")),
                (11, " apartamento ", 2, Decimal("200.00")),
                (12, "Loja", 9, Decimal("300.00")),  # condominium 9 does not exist yet
            ],
            "moradores": [
                (1, "Ana", 1, dt.date(2024, 1, 1)),
                (2, "Bia", 2, dt.date(2024, 1, 2)),
            ],
            "transacoes": [
                (100, 10, 1, D[1], Decimal("10.00")),
                (101, 11, 3, D[2], Decimal("20.00")),  # resident 3 arrives later
                (102, 12, 1, D[3], Decimal("30.00")),  # property excluded: cascade
                (103, 11, 2, D[4], Decimal("40.00")),
                (104, 10, 2, D[5], Decimal("50.01")),
                (105, 11, 1, D[5], Decimal("50.00")),
            ],
        },
    )


def late_load() -> bronze.Load:
    # Stamped when it commits, like the loader does: after the previous dbt run.
    return bronze.Load(
        2,
        dt.datetime.now(dt.UTC),
        {
            "condominios": [(9, "Gama", "Rua 9")],  # makes property 12, then 102, valid
            "imoveis": [(10, "casa", 8, Decimal("100.00"))],  # moves 10 to an unknown condo
            "moradores": [(3, "Caio", 2, dt.date(2024, 2, 1))],  # the late resident
            "transacoes": [(103, 11, 2, D[6], Decimal("41.00"))],  # 103 moves from D4 to D6
        },
    )


@pytest.mark.slow  # a dozen dbt builds: 30-60 s
def test_incremental_runs_converge_to_the_full_refresh(fresh_db, workdir):
    """Late residents, late condominiums, re-loaded properties and transactions: the
    incremental models end exactly where a full refresh ends, and a re-run with no new data
    changes nothing."""
    conninfo = fresh_db.psycopg_kwargs()
    bronze.create_postgres_bronze(conninfo)
    bronze.insert_postgres(conninfo, [first_load()])

    run_dbt(MODELS_AND_SEEDS, workdir=workdir)
    assert query(fresh_db, "select transacao_id from silver.transacoes order by 1") == [
        (100,),
        (103,),
        (104,),
        (105,),
    ]
    assert query(
        fresh_db, "select entidade, registro_id, motivo from silver.orfaos order by 1, 2"
    ) == [
        ("imoveis", 12, "condominio_inexistente"),
        ("transacoes", 101, "morador_inexistente"),
        ("transacoes", 102, "imovel_excluido"),
    ]

    before = snapshot(fresh_db)
    run_dbt(["run"], workdir=workdir)
    assert snapshot(fresh_db) == before, "a re-run with no new data changed something"

    bronze.insert_postgres(conninfo, [late_load()])
    run_dbt(["run"], workdir=workdir)
    incremental = snapshot(fresh_db)

    assert query(fresh_db, "select transacao_id from silver.transacoes order by 1") == [
        (101,),
        (102,),
        (103,),
        (105,),
    ]
    assert query(
        fresh_db,
        "select data_transacao, tipo_imovel, qtd_transacoes, valor_total "
        "from gold.transacoes_diarias_por_tipo_imovel order by 1, 2",
    ) == [
        (D[2], "Apartamento", 1, Decimal("20.00")),
        (D[3], "Loja", 1, Decimal("30.00")),
        (D[5], "Apartamento", 1, Decimal("50.00")),
        (D[6], "Apartamento", 1, Decimal("41.00")),
    ]

    run_dbt(["build", "--full-refresh"], workdir=workdir)
    assert snapshot(fresh_db) == incremental


@pytest.mark.slow  # builds in every order, each against a full refresh: about 60 s
def test_gold_applies_only_change_sets_it_has_not_seen(fresh_db, workdir):
    """The gold reports add silver's change sets to what they built last time. Builds out of
    the usual order must still end where a full refresh ends: silver built twice without
    gold (gold must recompute, not apply only the last change set), gold built twice
    without silver (the second must not apply the same change set again), and silver alone
    rebuilt with --full-refresh (no change set at all)."""
    conninfo = fresh_db.psycopg_kwargs()
    bronze.create_postgres_bronze(conninfo)
    bronze.insert_postgres(conninfo, [first_load()])
    run_dbt(MODELS_AND_SEEDS, workdir=workdir)

    silver = ["run", "--select", "silver"]
    downstream = ["run", "--select", "intermediate", "gold"]

    def reference() -> dict[str, list[tuple]]:
        """What a full refresh builds from the same bronze, restoring nothing."""
        run_dbt(["run", "--full-refresh"], workdir=workdir)
        return snapshot(fresh_db)

    # Silver twice, then gold once: two change sets, gold saw neither.
    bronze.insert_postgres(conninfo, [late_load()])
    run_dbt(silver, workdir=workdir)
    moved = bronze.Load(
        3,
        dt.datetime.now(dt.UTC),
        {
            "transacoes": [
                (100, 10, 2, D[1], Decimal("12.00")),  # moves to resident 2, new value
                (106, 11, 1, D[7], Decimal("70.00")),
            ]
        },
    )
    bronze.insert_postgres(conninfo, [moved])
    run_dbt(silver, workdir=workdir)
    run_dbt(downstream, workdir=workdir)
    after_out_of_order = snapshot(fresh_db)
    assert after_out_of_order == reference()

    # Gold twice without silver in between: the second run must not add the change set again.
    extra = bronze.Load(
        4, dt.datetime.now(dt.UTC), {"transacoes": [(107, 11, 2, D[8], Decimal("80.00"))]}
    )
    bronze.insert_postgres(conninfo, [extra])
    run_dbt(["run"], workdir=workdir)
    once = snapshot(fresh_db)
    run_dbt(downstream, workdir=workdir)
    assert snapshot(fresh_db) == once
    assert once == reference()

    # Silver transactions alone rebuilt from scratch: gold has no change set to apply.
    late = bronze.Load(
        5, dt.datetime.now(dt.UTC), {"transacoes": [(108, 11, 1, D[9], Decimal("90.00"))]}
    )
    bronze.insert_postgres(conninfo, [late])
    run_dbt(["run", "--select", "stg_transacoes", "--full-refresh"], workdir=workdir)
    run_dbt(downstream, workdir=workdir)
    rebuilt = snapshot(fresh_db)
    assert query(
        fresh_db,
        "select qtd_transacoes, valor_total from gold.transacoes_por_morador where morador_id = 1",
    ) == [(4, Decimal("240.00"))]  # 102, 105, 106 and 108 (100 left with property 10)
    assert rebuilt == reference()

    # A property changes type and stays valid: its transactions move between the daily
    # report's rows (their old type comes from the change set of silver properties).
    retyped = bronze.Load(
        6, dt.datetime.now(dt.UTC), {"imoveis": [(11, "Cobertura", 2, Decimal("200.00"))]}
    )
    bronze.insert_postgres(conninfo, [retyped])
    run_dbt(["run"], workdir=workdir)
    assert query(
        fresh_db,
        "select distinct tipo_imovel from gold.transacoes_diarias_por_tipo_imovel order by 1",
    ) == [("Cobertura",), ("Loja",)]
    assert snapshot(fresh_db) == reference()


INCREMENTAL_MODELS = {
    "stg_imoveis": "silver.imoveis",
    "stg_moradores": "silver.moradores",
    "stg_transacoes": "silver.transacoes",
    "int_transacoes_por_imovel": "silver.int_transacoes_por_imovel",
    "transacoes_por_morador": "gold.transacoes_por_morador",
    "transacoes_diarias_por_tipo_imovel": "gold.transacoes_diarias_por_tipo_imovel",
}


def stored_comments(db: ConnectionInfo, table: str) -> dict[str | None, str | None]:
    """The table's comment (key None) and every column's comment, as PostgreSQL has them."""
    schema, name = table.split(".")
    rows = query(
        db,
        "select a.attname, col_description(c.oid, a.attnum), obj_description(c.oid, 'pg_class') "
        "from pg_class c join pg_namespace n on n.oid = c.relnamespace "
        "join pg_attribute a on a.attrelid = c.oid and a.attnum > 0 and not a.attisdropped "
        f"where n.nspname = '{schema}' and c.relname = '{name}'",
    )
    return {None: rows[0][2], **{column: comment for column, comment, _ in rows}}


def documented_comments(workdir: Path, model: str) -> dict[str | None, str | None]:
    """The comments dbt must leave on a model's table: its YAML docs, from the manifest."""
    node = json.loads((workdir / "target" / "manifest.json").read_text())["nodes"][
        f"model.condomanage.{model}"
    ]
    return {
        None: node["description"],
        **{name: column["description"] for name, column in node["columns"].items()},
    }


@pytest.mark.slow  # three dbt builds: about 15 s
def test_incremental_builds_rewrite_only_the_comments_that_changed(fresh_db, workdir):
    """`persist_docs` on PostgreSQL (macros/persist_docs.sql): an incremental build writes a
    comment only where the stored one differs from the docs. COMMENT waits for a running
    autovacuum of the table (one deadlock_timeout, 1 s by default), so re-writing unchanged
    comments cost the 10M benchmark a second on its critical path."""
    conninfo = fresh_db.psycopg_kwargs()
    bronze.create_postgres_bronze(conninfo)
    bronze.insert_postgres(conninfo, [first_load()])
    run_dbt(MODELS_AND_SEEDS, workdir=workdir)
    for model, table in INCREMENTAL_MODELS.items():
        assert stored_comments(fresh_db, table) == documented_comments(workdir, model), table

    # Comments changed behind dbt's back, then an incremental build with new data.
    with psycopg.connect(**conninfo, autocommit=True) as conn:
        conn.execute("comment on column silver.transacoes.valor_transacao is 'stale'")
        conn.execute("comment on table gold.transacoes_por_morador is null")
    bronze.insert_postgres(conninfo, [late_load()])
    (workdir / "logs" / "dbt.log").unlink()
    run_dbt(["run"], workdir=workdir)

    log = (workdir / "logs" / "dbt.log").read_text()
    written = {
        (kind, target.replace('"', "").split(".", 1)[1])
        for kind, target in re.findall(r"comment on (column|table|view) (\S+)", log)
    }
    incremental_tables = set(INCREMENTAL_MODELS.values())
    assert {
        (kind, target)
        for kind, target in written
        if target in incremental_tables or target.rsplit(".", 1)[0] in incremental_tables
    } == {
        ("column", "silver.transacoes.valor_transacao"),
        ("table", "gold.transacoes_por_morador"),
    }
    for model, table in INCREMENTAL_MODELS.items():
        assert stored_comments(fresh_db, table) == documented_comments(workdir, model), table


@pytest.mark.slow  # three dbt builds: about 15 s
def test_silver_entities_are_vacuumed_only_after_builds_that_changed_them(fresh_db, workdir):
    """The `vacuum (analyze)` post-hook of silver.imoveis and silver.moradores (so that the
    transaction batch's lookups into them are index-only) is skipped after an incremental
    build that changed no row of the table, and still runs after one that changed some."""
    conninfo = fresh_db.psycopg_kwargs()
    bronze.create_postgres_bronze(conninfo)
    bronze.insert_postgres(conninfo, [first_load()])
    run_dbt(MODELS_AND_SEEDS, workdir=workdir)

    def vacuumed_by_next_run() -> set[str]:
        (workdir / "logs" / "dbt.log").unlink()
        run_dbt(["run"], workdir=workdir)
        log = (workdir / "logs" / "dbt.log").read_text()
        return set(re.findall(r'vacuum \(analyze\) "[^"]+"\."silver"\."(\w+)"', log))

    assert vacuumed_by_next_run() == set()
    retyped = bronze.Load(
        2, dt.datetime.now(dt.UTC), {"imoveis": [(11, "Loja", 2, Decimal("210.00"))]}
    )
    bronze.insert_postgres(conninfo, [retyped])
    assert vacuumed_by_next_run() == {"imoveis"}
    assert query(fresh_db, "select tipo, valor from silver.imoveis where imovel_id = 11") == [
        ("Loja", Decimal("210.00"))
    ]


@pytest.mark.slow  # several dbt builds: 20-30 s
def test_rows_removed_by_a_replaced_load_leave_silver_and_gold(fresh_db, workdir):
    """Bronze is append-only except when `condo load --force` replaces a load: its rows are
    deleted in the transaction that publishes the new load, and the ledger marks the old
    load `replaced`. If the new load lacks a row (e.g. a newer loader rejects it), the next
    incremental run must take that row out of silver and gold, like a full refresh. The
    replacement is written here the way the loader writes it (ledger contract in
    docs/contracts.md)."""
    conninfo = fresh_db.psycopg_kwargs()
    bronze.create_postgres_bronze(conninfo)
    bronze.insert_postgres(conninfo, [first_load()])
    with psycopg.connect(**conninfo, autocommit=True) as conn:
        conn.execute(
            "create schema ops; create table ops.loads (load_id bigint primary key, "
            "status text not null, replaced_by bigint, finished_at timestamptz not null)"
        )
        conn.execute("insert into ops.loads values (1, 'loaded', null, now() - interval '1 day')")
    run_dbt(MODELS_AND_SEEDS, workdir=workdir)
    assert query(fresh_db, "select transacao_id from silver.transacoes order by 1") == [
        (100,),
        (103,),
        (104,),
        (105,),
    ]

    # Load 1 of the transactions is replaced by load 2, which lacks transaction 104.
    kept = [row for row in first_load().rows["transacoes"] if row[0] != 104]
    reload = bronze.Load(2, dt.datetime.now(dt.UTC), {"transacoes": kept})
    with psycopg.connect(**conninfo) as conn:
        conn.execute("delete from bronze.transacoes where _load_id = 1")
        conn.execute("update ops.loads set status = 'replaced', replaced_by = 2 where load_id = 1")
        conn.execute("insert into ops.loads values (2, 'loaded', null, now())")
    bronze.insert_postgres(conninfo, [reload])

    run_dbt(["run"], workdir=workdir)
    incremental = snapshot(fresh_db)
    assert query(fresh_db, "select transacao_id from silver.transacoes order by 1") == [
        (100,),
        (103,),
        (105,),
    ]
    assert query(
        fresh_db,
        "select qtd_transacoes, valor_total from gold.transacoes_por_morador where morador_id = 2",
    ) == [(1, Decimal("40.00"))]  # 103 only: 104 (50.01) left with its load

    run_dbt(["run", "--full-refresh"], workdir=workdir)
    assert snapshot(fresh_db) == incremental
