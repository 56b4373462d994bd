"""Match a file's header to its entity: required columns, the optional id column, extras."""

from __future__ import annotations

from dataclasses import dataclass

from spark_loaders.domain import Entity


@dataclass(frozen=True)
class ColumnMap:
    positions: dict[str, int]  # entity column -> 0-based field index
    width: int  # number of fields in the header
    has_ids: bool
    overflow_index: int | None  # index of the overflow column when it is the last header column
    warnings: tuple[str, ...]


class HeaderError(ValueError):
    """The header makes the file unloadable; the file is rejected whole."""


QUOTE_LIMIT = 200  # characters of the header an error or warning may echo


def quote_header(text: str, limit: int = QUOTE_LIMIT) -> str:
    """Header text for a message, cut to ``limit`` characters: messages quote the header
    (never a data line), and never more of it than a reader needs to recognise it."""
    return text if len(text) <= limit else text[: limit - 3] + "..."


def map_header(entity: Entity, names: list[str]) -> ColumnMap:
    seen: dict[str, int] = {}
    duplicated: list[str] = []
    for index, name in enumerate(names):
        if name in seen and name in entity.column_names:
            duplicated.append(name)
        seen.setdefault(name, index)
    if duplicated:
        raise HeaderError(
            "duplicated column(s) in the header: "
            + quote_header(", ".join(sorted(set(duplicated))))
        )
    missing = [c for c in entity.required if c not in seen]
    if missing:
        raise HeaderError(
            f"missing required column(s): {', '.join(missing)} "
            f"(header has: {quote_header(', '.join(names)) or 'nothing'})"
        )
    positions = {c: seen[c] for c in entity.column_names if c in seen}
    extras = [n for n in names if n not in entity.column_names]
    warnings = ()
    if extras:
        shown = ", ".join(n or "(empty name)" for n in extras)
        warnings = (f"ignored unknown column(s): {quote_header(shown)}",)
    overflow_index = None
    if entity.overflow is not None and names and names[-1] == entity.overflow:
        overflow_index = len(names) - 1
    return ColumnMap(
        positions=positions,
        width=len(names),
        has_ids=entity.id_column in positions,
        overflow_index=overflow_index,
        warnings=warnings,
    )
