"""The gold models the export knows about, as fixed by docs/contracts.md.

Each model lists its columns with the contract's PostgreSQL and Spark types, the column a
parallel JDBC read splits on, the sort order inside the Parquet files and, for the daily
model, the hive-style partition derived from the date.
"""

from __future__ import annotations

from dataclasses import dataclass

GOLD_SCHEMA = "gold"


@dataclass(frozen=True)
class Column:
    name: str
    spark_type: str  # Spark SQL DDL type, e.g. "decimal(20,2)"
    pg_type: str  # the contract's PostgreSQL type, for messages and the manifest


@dataclass(frozen=True)
class LakePartition:
    """A hive-style directory level computed from a date column, e.g. ``mes=2024-01``."""

    name: str
    source_column: str
    date_format: str  # Spark datetime pattern applied to ``source_column``
    description: str


@dataclass(frozen=True)
class GoldModel:
    name: str
    columns: tuple[Column, ...]
    split_column: str  # integer or date column for partitioned JDBC reads
    sort_columns: tuple[str, ...]
    lake_partition: LakePartition | None = None

    @property
    def column_names(self) -> tuple[str, ...]:
        return tuple(c.name for c in self.columns)

    def column(self, name: str) -> Column:
        for c in self.columns:
            if c.name == name:
                return c
        raise KeyError(name)


MONTH = LakePartition(
    name="mes",
    source_column="data_transacao",
    date_format="yyyy-MM",
    description="calendar month of data_transacao, as YYYY-MM",
)

TRANSACOES_POR_CONDOMINIO = GoldModel(
    name="transacoes_por_condominio",
    columns=(
        Column("condominio_id", "int", "integer"),
        Column("nome_condominio", "string", "varchar(255)"),
        Column("qtd_transacoes", "bigint", "bigint"),
        Column("valor_total", "decimal(20,2)", "numeric(20,2)"),
    ),
    split_column="condominio_id",
    sort_columns=("condominio_id",),
)

TRANSACOES_POR_MORADOR = GoldModel(
    name="transacoes_por_morador",
    columns=(
        Column("morador_id", "int", "integer"),
        Column("nome_morador", "string", "varchar(255)"),
        Column("condominio_id", "int", "integer"),
        Column("qtd_transacoes", "bigint", "bigint"),
        Column("valor_total", "decimal(20,2)", "numeric(20,2)"),
    ),
    split_column="morador_id",
    sort_columns=("morador_id",),
)

TRANSACOES_DIARIAS_POR_TIPO_IMOVEL = GoldModel(
    name="transacoes_diarias_por_tipo_imovel",
    columns=(
        Column("data_transacao", "date", "date"),
        Column("tipo_imovel", "string", "varchar(50)"),
        Column("qtd_transacoes", "bigint", "bigint"),
        Column("valor_total", "decimal(20,2)", "numeric(20,2)"),
        Column("valor_medio", "decimal(15,2)", "numeric(15,2)"),
    ),
    split_column="data_transacao",
    sort_columns=("data_transacao", "tipo_imovel"),
    lake_partition=MONTH,
)

MODELS: tuple[GoldModel, ...] = (
    TRANSACOES_POR_CONDOMINIO,
    TRANSACOES_POR_MORADOR,
    TRANSACOES_DIARIAS_POR_TIPO_IMOVEL,
)

MODEL_NAMES: tuple[str, ...] = tuple(m.name for m in MODELS)


def select_models(names: list[str] | tuple[str, ...] | None) -> tuple[GoldModel, ...]:
    """The models to export, in contract order; ``None`` or empty means all of them."""
    from spark_loaders.errors import CondoError

    if not names:
        return MODELS
    by_name = {m.name: m for m in MODELS}
    unknown = [n for n in names if n not in by_name]
    if unknown:
        raise CondoError(
            f"unknown gold model(s): {', '.join(unknown)}; choose from {', '.join(MODEL_NAMES)}"
        )
    wanted = set(names)
    return tuple(m for m in MODELS if m.name in wanted)
