"""Random CSV rows full of the defects the load rules catch, for every entity: bad and
borderline integers, dates and amounts, empty and padded values, text at and over its
limit, addresses with unquoted commas, a field too few or too many."""

from __future__ import annotations

import random
from pathlib import Path

from spark_loaders.domain import BY_NAME

INTEGERS = [
    "1", "42", "007", "2147483647", "2147483648", "0", "00", "-5", "+5", "1.0", "abc", "1e3",
    "0000000000000000000000001", "99999999999999999999999", " 12 ", "\t9", "١٢", "",
]  # fmt: skip
DATES = [
    "2023-01-01", "2024-02-29", "2023-02-29", "1900-02-29", "2000-02-29", "0000-01-01",
    "0001-01-01", "9999-12-31", "2023-13-01", "2023-00-10", "2023-04-31", "2023-04-30",
    "2023-1-1", "20230101", "2023/01/01", " 2023-05-05 ", "2023-05-05x", "",
]  # fmt: skip
AMOUNTS = [
    "1", "0", "0.00", "0.01", "1.5", "1.55", "1.555", "1.", ".5", "9999999999999.99",
    "10000000000000", "0000000000000001.50", "-1.00", "1,5", "abc", " 3.25 ", "",
    "1" + "0" * 40, "0" * 40 + "5.25",  # beyond any decimal's 38 digits
]  # fmt: skip
TEXTS = ["Casa", "Apartamento", "ação", "x" * 50, "y" * 51, " pad ", "", "\tTab"]


def defect_rows(rng: random.Random, entity: str, ids: bool, n: int) -> list[str]:
    lines = []
    for k in range(1, n + 1):
        if entity == "transacoes":
            fields = [rng.choice(INTEGERS), rng.choice(INTEGERS), rng.choice(DATES)]
            fields.append(rng.choice(AMOUNTS))
        elif entity == "imoveis":
            fields = [rng.choice(TEXTS), rng.choice(INTEGERS), rng.choice(AMOUNTS)]
        elif entity == "moradores":
            fields = [rng.choice(TEXTS) * rng.choice([1, 60]), rng.choice(INTEGERS)]
            fields.append(rng.choice(DATES))
        else:  # condominios: the address may hold unquoted commas
            fields = [rng.choice(TEXTS), ", ".join(rng.choice(TEXTS) for _ in range(3))]
        if ids:
            fields.insert(0, rng.choice([str(k)] * 8 + INTEGERS))
        shape = rng.random()
        if shape < 0.03:
            fields = fields[:-1]  # a field short
        elif shape < 0.06:
            fields = [*fields, "extra"]  # a field too many
        # A line that starts with a space or tab may be blank: such files take the Spark path.
        lines.append(",".join(fields).lstrip(" \t") or "x")
    return lines


def header(entity: str, ids: bool) -> str:
    columns = [c.name for c in BY_NAME[entity].columns]
    return ",".join(columns if ids else columns[1:])


def write_defect_file(
    path: Path, entity: str, *, ids: bool, rows: int, seed: int, crlf: bool, final_newline: bool
) -> Path:
    end = "\r\n" if crlf else "\n"
    lines = [header(entity, ids), *defect_rows(random.Random(seed), entity, ids, rows)]
    path.write_bytes((end.join(lines) + (end if final_newline else "")).encode())
    return path
