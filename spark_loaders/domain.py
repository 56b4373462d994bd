"""The domain's constants, defined here and nowhere else: the four source entities (their
columns, types and load order), the reject reason codes, the bronze lineage columns and the
targets a job can run against.

Why a module of its own, at the top of the package: the loaders, the streaming job, the
generator, the monitor, the export, the CLI, the benchmarks and the tests all need these
values, and most of them have nothing to do with ingestion. This module imports only the
standard library, so any of them (the monitor without Spark, the generator without a
database) can import it for free. Where the dbt project or the docs must repeat a value
(docs/contracts.md, ``models/silver/_silver__sources.yml``, ``macros/lineage.sql``),
``tests/python/test_domain.py`` compares them with this module.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Kind = Literal["id", "int", "text", "date", "money"]

# Reason codes, in the fixed order in which a row's reasons are listed.
REASONS: tuple[str, ...] = (
    "field_count",
    "required",
    "too_long",
    "invalid_integer",
    "invalid_date",
    "invalid_amount",
)
REASON_BIT: dict[str, int] = {reason: 1 << i for i, reason in enumerate(REASONS)}

INT4_MAX = 2_147_483_647


@dataclass(frozen=True)
class Column:
    name: str
    kind: Kind
    max_len: int | None = None

    @property
    def pg_type(self) -> str:
        if self.kind in ("id", "int"):
            return "integer"
        if self.kind == "date":
            return "date"
        if self.kind == "money":
            return "numeric(15,2)"
        return f"varchar({self.max_len})" if self.max_len else "text"

    @property
    def spark_type(self) -> str:
        return {
            "id": "int",
            "int": "int",
            "date": "date",
            "money": "decimal(15,2)",
            "text": "string",
        }[self.kind]

    @property
    def quoted_in_copy(self) -> bool:
        return self.kind == "text"


@dataclass(frozen=True)
class Entity:
    name: str
    columns: tuple[Column, ...]  # the id column first, then the source's other columns
    overflow: str | None = None  # free-text column that absorbs unquoted commas when it is last

    @property
    def id_column(self) -> str:
        return self.columns[0].name

    @property
    def required(self) -> tuple[str, ...]:
        """Columns every file must carry (the id column is optional)."""
        return tuple(c.name for c in self.columns[1:])

    @property
    def column_names(self) -> tuple[str, ...]:
        return tuple(c.name for c in self.columns)

    def column(self, name: str) -> Column:
        return next(c for c in self.columns if c.name == name)


ENTITIES: tuple[Entity, ...] = (
    Entity(
        "condominios",
        (Column("condominio_id", "id"), Column("nome", "text", 255), Column("endereco", "text")),
        overflow="endereco",
    ),
    Entity(
        "imoveis",
        (
            Column("imovel_id", "id"),
            Column("tipo", "text", 50),
            Column("condominio_id", "int"),
            Column("valor", "money"),
        ),
    ),
    Entity(
        "moradores",
        (
            Column("morador_id", "id"),
            Column("nome", "text", 255),
            Column("condominio_id", "int"),
            Column("data_registro", "date"),
        ),
    ),
    Entity(
        "transacoes",
        (
            Column("transacao_id", "id"),
            Column("imovel_id", "int"),
            Column("morador_id", "int"),
            Column("data_transacao", "date"),
            Column("valor_transacao", "money"),
        ),
    ),
)
# The load order (dimensions before the facts that point at them), which ENTITIES follows.
ENTITY_ORDER: tuple[str, ...] = tuple(e.name for e in ENTITIES)
BY_NAME: dict[str, Entity] = {e.name: e for e in ENTITIES}


@dataclass(frozen=True)
class LineageColumn:
    """A column every bronze table carries after the entity's own (docs/contracts.md)."""

    name: str
    pg_type: str
    spark_type: str
    pg_default: str | None = None  # the PostgreSQL column default, if it has one


# The lineage columns of every bronze table, in table order.
LINEAGE_COLUMNS: tuple[LineageColumn, ...] = (
    LineageColumn("_source_file", "text", "string"),
    LineageColumn("_source_line", "bigint", "bigint"),
    LineageColumn("_load_id", "bigint", "bigint"),
    LineageColumn("_loaded_at", "timestamptz", "timestamp", "now()"),
    LineageColumn("_repaired", "boolean", "boolean", "false"),
)
LINEAGE: tuple[str, ...] = tuple(c.name for c in LINEAGE_COLUMNS)
# The column Spark's bronze tables are partitioned by; Spark stores it last.
PARTITION_COLUMN = "_load_id"

# Where a job writes bronze and builds silver and gold: PostgreSQL (the default), or Spark
# tables in the local Hive metastore. Also the dbt target names.
POSTGRES_TARGET = "postgres"
SPARK_TARGET = "spark"
TARGETS: tuple[str, ...] = (POSTGRES_TARGET, SPARK_TARGET)
DEFAULT_TARGET = POSTGRES_TARGET
