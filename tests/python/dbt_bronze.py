"""Bronze fixtures for the dbt tests: the contract's tables (docs/contracts.md) and rows.

The dbt project only reads bronze, so its tests can create bronze exactly as the contract
describes and insert rows chosen for each edge case. ``sample_rows`` reads data/sample the
way the loader does for these files (ids assigned 1..n in file order, unquoted commas of
the last column joined back); the end-to-end test also loads the files through the real
loader when it is available.
"""

from __future__ import annotations

import csv
import datetime as dt
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

import psycopg

from spark_loaders import domain

# name, PostgreSQL type, Spark type: the loader's definitions, which test_domain.py checks
# against docs/contracts.md.
ENTITY_COLUMNS: dict[str, tuple[tuple[str, str, str], ...]] = {
    e.name: tuple((c.name, c.pg_type, c.spark_type) for c in e.columns) for e in domain.ENTITIES
}
LINEAGE_COLUMNS = tuple((c.name, c.pg_type, c.spark_type) for c in domain.LINEAGE_COLUMNS)
ENTITIES = domain.ENTITY_ORDER


@dataclass(frozen=True)
class Load:
    """One bronze load: its ledger id, commit time and the rows per entity (entity columns
    only; lineage is filled in)."""

    load_id: int
    loaded_at: dt.datetime
    rows: dict[str, Sequence[Sequence[Any]]]
    source_file: str | None = None


def columns(entity: str) -> list[str]:
    return [c[0] for c in (*ENTITY_COLUMNS[entity], *LINEAGE_COLUMNS)]


def postgres_ddl() -> list[str]:
    statements = ["create schema if not exists bronze"]
    for entity, cols in ENTITY_COLUMNS.items():
        body = ", ".join(f"{n} {t} not null" for n, t, _ in cols)
        lineage = ", ".join(f"{n} {t} not null" for n, t, _ in LINEAGE_COLUMNS)
        statements.append(f"create table if not exists bronze.{entity} ({body}, {lineage})")
    statements.append(
        "create table if not exists bronze.rejected_rows (entity text, source_file text, "
        "source_line bigint, raw_line text, reasons text[], load_id bigint, rejected_at timestamptz)"
    )
    return statements


def spark_ddl() -> list[str]:
    statements = ["create database if not exists bronze"]
    for entity, cols in ENTITY_COLUMNS.items():
        body = ", ".join(f"{n} {s}" for n, _, s in (*cols, *LINEAGE_COLUMNS))
        statements.append(f"create table if not exists bronze.{entity} ({body}) using parquet")
    statements.append(
        "create table if not exists bronze.rejected_rows (entity string, source_file string, "
        "source_line bigint, raw_line string, reasons array<string>, load_id bigint, "
        "rejected_at timestamp) using parquet"
    )
    return statements


def lineage_rows(load: Load, entity: str) -> list[tuple[Any, ...]]:
    source_file = load.source_file or f"{entity}_{load.load_id}.csv"
    return [
        (*row, source_file, line, load.load_id, load.loaded_at, False)
        for line, row in enumerate(load.rows.get(entity, ()), start=2)
    ]


def create_postgres_bronze(conninfo: dict[str, Any]) -> None:
    with psycopg.connect(**conninfo, autocommit=True) as conn:
        for statement in postgres_ddl():
            conn.execute(statement)


def insert_postgres(conninfo: dict[str, Any], loads: Iterable[Load]) -> None:
    with psycopg.connect(**conninfo) as conn, conn.cursor() as cur:
        for load in loads:
            for entity in ENTITIES:
                rows = lineage_rows(load, entity)
                if not rows:
                    continue
                cols = columns(entity)
                placeholders = ", ".join(["%s"] * len(cols))
                cur.executemany(
                    f"insert into bronze.{entity} ({', '.join(cols)}) values ({placeholders})",
                    rows,
                )


def _read_csv(path: Path) -> list[list[str]]:
    with path.open(newline="", encoding="utf-8") as handle:
        reader = csv.reader(handle)
        next(reader)
        return [row for row in reader if row]


def sample_rows(sample_dir: Path) -> dict[str, list[tuple[Any, ...]]]:
    """data/sample as bronze entity rows, ids 1..n in file order."""
    condominios = []
    for i, row in enumerate(_read_csv(sample_dir / "condominios.csv"), start=1):
        condominios.append((i, row[0], ",".join(row[1:]).strip()))
    imoveis = [
        (i, r[0], int(r[1]), Decimal(r[2]))
        for i, r in enumerate(_read_csv(sample_dir / "imoveis.csv"), start=1)
    ]
    moradores = [
        (i, r[0], int(r[1]), dt.date.fromisoformat(r[2]))
        for i, r in enumerate(_read_csv(sample_dir / "moradores.csv"), start=1)
    ]
    transacoes = [
        (i, int(r[0]), int(r[1]), dt.date.fromisoformat(r[2]), Decimal(r[3]))
        for i, r in enumerate(_read_csv(sample_dir / "transacoes.csv"), start=1)
    ]
    return {
        "condominios": condominios,
        "imoveis": imoveis,
        "moradores": moradores,
        "transacoes": transacoes,
    }
