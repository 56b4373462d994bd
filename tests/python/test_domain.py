"""The places that must repeat a domain constant outside Python agree with
``spark_loaders.domain``: the contract (docs/contracts.md), the docs, the dbt sources, the
lineage macro, the dbt profile and the Airflow DAG. Each test reads the other file as text
and fails on the first value that differs, so changing a constant on one side only fails here.

The last test checks the real thing: the bronze tables ``ensure_schema`` creates in a fresh
database have exactly the contract's columns and types.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import psycopg
import yaml

from spark_loaders import domain

ROOT = Path(__file__).resolve().parents[2]
CONTRACTS = (ROOT / "docs" / "contracts.md").read_text()


def _codes(text: str) -> list[str]:
    """The backquoted identifiers of a sentence, in order."""
    return re.findall(r"`([a-z_]+)`", text)


def _section(text: str, start: str, end: str) -> str:
    return text[text.index(start) : text.index(end, text.index(start))]


def _table_rows(markdown: str) -> list[list[str]]:
    """The body rows of the first Markdown table in ``markdown``, cells stripped."""
    rows = [line for line in markdown.splitlines() if line.startswith("|")]
    return [[cell.strip() for cell in row.strip("|").split("|")] for row in rows[2:]]


def _words(text: str) -> list[str]:
    return re.findall(r"[a-z_]+", text)


def test_contract_lists_the_lineage_columns_with_their_types() -> None:
    bronze = _section(CONTRACTS, "## Bronze", "| table | entity columns |")
    documented = [tuple(cell.strip("`") for cell in row[:3]) for row in _table_rows(bronze)]
    expected = [(c.name, c.pg_type, c.spark_type) for c in domain.LINEAGE_COLUMNS]
    assert documented == expected


def test_contract_lists_the_entity_tables_and_columns_in_load_order() -> None:
    tables = _section(CONTRACTS, "| table | entity columns |", "All entity columns")
    documented = {}
    for table, columns in _table_rows(tables):
        documented[table.strip("`").removeprefix("bronze.")] = [
            tuple(c.split(" ", 1)) for c in _codes_with_types(columns)
        ]
    assert list(documented) == list(domain.ENTITY_ORDER)
    for entity in domain.ENTITIES:
        assert documented[entity.name] == [(c.name, c.pg_type) for c in entity.columns]


def _codes_with_types(cell: str) -> list[str]:
    return re.findall(r"`([^`]+)`", cell)


def test_contract_and_ingestion_docs_list_the_reason_codes_in_order() -> None:
    reasons = CONTRACTS[CONTRACTS.index("Reason codes:") :].split("\n\n", 1)[0]
    assert tuple(_codes(reasons)) == domain.REASONS
    ingestion = (ROOT / "docs" / "ingestion.md").read_text()
    rule = ingestion[ingestion.index("in the contract's fixed order:") :].split("\n\n", 1)[0]
    assert tuple(_codes(rule)) == domain.REASONS


def test_generator_doc_describes_every_reason_in_order() -> None:
    generator = (ROOT / "docs" / "generator.md").read_text()
    table = _section(generator, "| reason | how the row is broken |", "\n\n")
    assert tuple(row[0].strip("`") for row in _table_rows(table)) == domain.REASONS


def test_contract_quarantine_lists_the_entities() -> None:
    quarantine = _section(CONTRACTS, "### Quarantine", "Reason codes:")
    entity_row = next(row for row in _table_rows(quarantine) if row[0] == "`entity`")
    assert tuple(_codes(entity_row[2])) == domain.ENTITY_ORDER


def test_dbt_bronze_sources_follow_the_domain() -> None:
    sources = yaml.safe_load((ROOT / "models" / "silver" / "_silver__sources.yml").read_text())
    bronze = next(s for s in sources["sources"] if s["name"] == "bronze")
    assert bronze["loaded_at_field"] in domain.LINEAGE
    tables = {t["name"]: t for t in bronze["tables"]}
    quarantine = tables.pop("rejected_rows")
    assert tuple(tables) == domain.ENTITY_ORDER
    for entity in domain.ENTITIES:
        columns = tuple(c["name"] for c in tables[entity.name]["columns"])
        assert columns == entity.column_names + domain.LINEAGE, entity.name
    described = {c["name"]: c["description"] for c in quarantine["columns"]}
    assert tuple(w for w in _words(described["entity"]) if w in domain.BY_NAME) == (
        domain.ENTITY_ORDER
    )
    reasons = described["reasons"].split(":", 1)[1]
    assert tuple(_words(reasons)) == domain.REASONS


def test_readme_layer_table_names_the_lineage_columns() -> None:
    readme = (ROOT / "README.md").read_text()
    bronze = next(line for line in readme.splitlines() if line.startswith("| bronze |"))
    lineage = bronze[bronze.index("with lineage (") :].split(")", 1)[0]
    assert tuple(_codes(lineage)) == domain.LINEAGE


def test_lineage_macro_carries_the_lineage_columns_in_order() -> None:
    macro = (ROOT / "macros" / "lineage.sql").read_text()
    body = _section(macro, "{% macro lineage_columns", "{%- endmacro %}")
    assert tuple(re.findall(r"\bas (_[a-z_]+)", body)) == domain.LINEAGE


def test_dbt_profile_has_every_target_and_the_same_default() -> None:
    profile = yaml.safe_load((ROOT / "profiles" / "profiles.yml").read_text())["condomanage"]
    assert set(domain.TARGETS) <= set(profile["outputs"])
    default = re.fullmatch(r"\{\{ env_var\('CONDO_DBT_TARGET', '(\w+)'\) \}\}", profile["target"])
    assert default is not None and default.group(1) == domain.DEFAULT_TARGET


def test_airflow_dag_offers_the_targets() -> None:
    dag = ROOT / "orchestration" / "airflow" / "dags" / "condomanage_lakehouse.py"
    tree = ast.parse(dag.read_text())
    param = next(
        value
        for node in ast.walk(tree)
        if isinstance(node, ast.Dict)
        for key, value in zip(node.keys, node.values, strict=True)
        if isinstance(key, ast.Constant) and key.value == "target"
    )
    assert isinstance(param, ast.Call)
    enum = next(kw.value for kw in param.keywords if kw.arg == "enum")
    assert ast.literal_eval(param.args[0]) == domain.DEFAULT_TARGET
    assert tuple(ast.literal_eval(enum)) == domain.TARGETS


def test_bronze_tables_have_the_contract_columns(fresh_db) -> None:
    from spark_loaders.ingest.ddl import ensure_schema

    with psycopg.connect(**fresh_db.psycopg_kwargs(), autocommit=True) as conn:
        ensure_schema(conn)
        for entity in domain.ENTITIES:
            got = conn.execute(
                "select attname, format_type(atttypid, atttypmod) from pg_attribute "
                "where attrelid = %s::regclass and attnum > 0 and not attisdropped "
                "order by attnum",
                (f"bronze.{entity.name}",),
            ).fetchall()
            expected = [(c.name, _spelled(c.pg_type)) for c in entity.columns] + [
                (c.name, _spelled(c.pg_type)) for c in domain.LINEAGE_COLUMNS
            ]
            assert got == expected, entity.name


def _spelled(pg_type: str) -> str:
    """A type as PostgreSQL's format_type spells it: two of the contract's are abbreviated."""
    return pg_type.replace("timestamptz", "timestamp with time zone").replace(
        "varchar", "character varying"
    )
