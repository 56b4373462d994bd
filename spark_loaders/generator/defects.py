"""Deliberately bad rows: one defect per row, breaking exactly one of the loader's rules.

Each function takes a row's fields (already valid) and returns new fields that violate
one rule and no other. The values are chosen so that no reasonable reading of the rules
could count them twice: an invalid integer is never empty (that would be arguable as
``required``), an invalid amount never hides in a text column, a field-count defect
keeps every field that is still there valid.
"""

from __future__ import annotations

from collections.abc import Callable

from spark_loaders.domain import Column
from spark_loaders.generator.schema import Entity, is_integer, is_text
from spark_loaders.generator.vocab import FILLER_WORDS

Random = Callable[[], float]

# Not base-10 positive int4: signs, zero, overflow, decimals, exponents, hex, words.
INVALID_INTEGERS: tuple[str, ...] = (
    "abc",
    "-3",
    "0",
    "2147483648",
    "1.5",
    "12a",
    "99999999999",
    "1e3",
    "0x1F",
    "-2147483649",
    "3,0",
    "um",
)

# Not exactly YYYY-MM-DD, or not a real calendar day.
INVALID_DATES: tuple[str, ...] = (
    "2024-02-30",
    "2023-02-29",
    "2024-04-31",
    "2024-13-01",
    "2024-00-10",
    "24-01-05",
    "2024/01/05",
    "05/01/2024",
    "2024-1-5",
    "20240105",
    "2024-01-05T10:00:00",
    "ontem",
)

# Not a plain positive decimal with '.', at most two decimals and below 10^13.
INVALID_AMOUNTS: tuple[str, ...] = (
    "1.000.000,00",
    "950000,00",
    "1000.001",
    "-10",
    "0.00",
    "0",
    "1e5",
    "R$ 950000.00",
    "10000000000000.00",
    "NaN",
    "abc",
    "-0.01",
    "12.3.4",
)


def quote(field: str) -> str:
    """RFC 4180 quoting, only when the field needs it."""
    if '"' in field:
        return '"' + field.replace('"', '""') + '"'
    if "," in field or "\n" in field or "\r" in field:
        return '"' + field + '"'
    return field


def csv_line(fields: list[str]) -> str:
    return ",".join(quote(f) for f in fields)


def _pick(rnd: Random, options: tuple[str, ...] | list) -> str:
    return options[int(rnd() * len(options))]


def too_long_text(rnd: Random, limit: int) -> str:
    """A plausible-looking text strictly longer than ``limit`` characters (after trimming),
    sometimes exactly one over the limit, with accented letters so that counting bytes
    instead of characters would be noticed."""
    length = limit + 1 if rnd() < 0.3 else limit + 1 + int(rnd() * 200)
    text = _pick(rnd, FILLER_WORDS)
    while len(text) < length:
        text += " " + _pick(rnd, FILLER_WORDS)
    text = text[:length]
    if text[-1] == " ":
        text = text[:-1] + "ã"
    assert len(text) == length
    return text


def apply(
    entity: Entity, columns: tuple[Column, ...], fields: list[str], reason: str, rnd: Random
) -> list[str]:
    """Break ``fields`` (one valid row with ``columns``) so that the loader rejects it for
    ``reason`` and nothing else."""
    out = list(fields)
    if reason == "field_count":
        # The overflow column legitimately absorbs extra fields, so that entity can only
        # lose one; otherwise lose the last field or gain one (often a trailing comma).
        if entity.overflow or rnd() < 0.5:
            out.pop()
        else:
            out.append("" if rnd() < 0.5 else _pick(rnd, ("observação", "N/A", "1")))
        return out
    if reason == "required":
        idx = _pick(rnd, [i for i, c in enumerate(columns) if is_text(c)])
        out[idx] = "" if rnd() < 0.5 else "   "
        return out
    if reason == "too_long":
        idx = _pick(rnd, [i for i, c in enumerate(columns) if c.max_len is not None])
        limit = columns[idx].max_len
        assert limit is not None
        out[idx] = too_long_text(rnd, limit)
        return out
    if reason == "invalid_integer":
        idx = _pick(rnd, [i for i, c in enumerate(columns) if is_integer(c)])
        out[idx] = _pick(rnd, INVALID_INTEGERS)
        return out
    if reason == "invalid_date":
        idx = _pick(rnd, [i for i, c in enumerate(columns) if c.kind == "date"])
        out[idx] = _pick(rnd, INVALID_DATES)
        return out
    if reason == "invalid_amount":
        idx = _pick(rnd, [i for i, c in enumerate(columns) if c.kind == "money"])
        out[idx] = _pick(rnd, INVALID_AMOUNTS)
        return out
    raise ValueError(f"unknown reason {reason!r}")
