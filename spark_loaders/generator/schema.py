"""The shape of the four source files and which reject reasons apply to which column.

This mirrors the loader's rules (docs/ingestion.md, "Validation"): it is what the generator needs to write rows
and to break them on purpose, one rule at a time.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

# The loader's reason codes, in the contract's fixed order (docs/contracts.md).
REASONS: tuple[str, ...] = (
    "field_count",
    "required",
    "too_long",
    "invalid_integer",
    "invalid_date",
    "invalid_amount",
)

Kind = Literal["id", "int", "text", "nome", "tipo", "date", "money"]

# Length limits of the bounded text columns, in characters.
MAX_LENGTH: dict[str, int] = {"nome": 255, "tipo": 50}


@dataclass(frozen=True)
class Column:
    name: str
    kind: Kind

    @property
    def is_text(self) -> bool:
        return self.kind in ("text", "nome", "tipo")

    @property
    def is_integer(self) -> bool:
        return self.kind in ("id", "int")


@dataclass(frozen=True)
class Entity:
    name: str
    columns: tuple[Column, ...]  # with the id column first
    overflow: bool = False  # the last column takes unquoted extra fields (loader repair)

    @property
    def file_name(self) -> str:
        return f"{self.name}.csv"

    def header(self, with_ids: bool) -> tuple[Column, ...]:
        return self.columns if with_ids else self.columns[1:]

    def reasons(self, with_ids: bool) -> tuple[str, ...]:
        """The reject reasons a single defect in one of this entity's rows can produce."""
        cols = self.header(with_ids)
        applies = {
            "field_count": True,
            "required": any(c.is_text for c in cols),
            "too_long": any(c.kind in MAX_LENGTH for c in cols),
            "invalid_integer": any(c.is_integer for c in cols),
            "invalid_date": any(c.kind == "date" for c in cols),
            "invalid_amount": any(c.kind == "money" for c in cols),
        }
        return tuple(r for r in REASONS if applies[r])


CONDOMINIOS = Entity(
    "condominios",
    (Column("condominio_id", "id"), Column("nome", "nome"), Column("endereco", "text")),
    overflow=True,
)
IMOVEIS = Entity(
    "imoveis",
    (
        Column("imovel_id", "id"),
        Column("tipo", "tipo"),
        Column("condominio_id", "int"),
        Column("valor", "money"),
    ),
)
MORADORES = Entity(
    "moradores",
    (
        Column("morador_id", "id"),
        Column("nome", "nome"),
        Column("condominio_id", "int"),
        Column("data_registro", "date"),
    ),
)
TRANSACOES = Entity(
    "transacoes",
    (
        Column("transacao_id", "id"),
        Column("imovel_id", "int"),
        Column("morador_id", "int"),
        Column("data_transacao", "date"),
        Column("valor_transacao", "money"),
    ),
)

# In dependency order, which is also the order the generator writes them in.
ENTITIES: tuple[Entity, ...] = (CONDOMINIOS, IMOVEIS, MORADORES, TRANSACOES)
