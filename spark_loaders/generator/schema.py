"""The four source files as the generator sees them, and which reject reasons apply to which
column.

The entities, their columns and the reason codes come from :mod:`spark_loaders.domain`, the
same definitions the loader validates against (docs/ingestion.md, "Validation"); this module
adds what the generator needs to write rows and to break them on purpose, one rule at a time.
"""

from __future__ import annotations

from dataclasses import dataclass

from spark_loaders import domain
from spark_loaders.domain import REASONS, Column


def is_text(column: Column) -> bool:
    return column.kind == "text"


def is_integer(column: Column) -> bool:
    return column.kind in ("id", "int")


@dataclass(frozen=True)
class Entity:
    name: str
    columns: tuple[Column, ...]  # with the id column first
    overflow: bool = False  # the last column takes unquoted extra fields (loader repair)

    @classmethod
    def of(cls, entity: domain.Entity) -> Entity:
        return cls(entity.name, entity.columns, overflow=entity.overflow is not None)

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
            "required": any(is_text(c) for c in cols),
            "too_long": any(c.max_len is not None for c in cols),
            "invalid_integer": any(is_integer(c) for c in cols),
            "invalid_date": any(c.kind == "date" for c in cols),
            "invalid_amount": any(c.kind == "money" for c in cols),
        }
        return tuple(r for r in REASONS if applies[r])


# In load order, which is also the order the generator writes them in.
ENTITIES: tuple[Entity, ...] = tuple(Entity.of(e) for e in domain.ENTITIES)
_BY_NAME = {e.name: e for e in ENTITIES}
CONDOMINIOS = _BY_NAME["condominios"]
IMOVEIS = _BY_NAME["imoveis"]
MORADORES = _BY_NAME["moradores"]
TRANSACOES = _BY_NAME["transacoes"]
