"""``condo generate``: determinism, sizes, CSV quoting and error injection.

The bad rows are checked with a small validator written here from the loader's rules
(docs/ingestion.md, "Validation"), independently of the generator's code: every row the generator
calls bad must break exactly one rule, the one it claims, and every other row none.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import math
import re
import subprocess
import sys
from collections import Counter
from datetime import date
from decimal import Decimal
from pathlib import Path

import pytest

from spark_loaders.generate import generate, sizes

FILES = ("condominios.csv", "imoveis.csv", "moradores.csv", "transacoes.csv")
ID_COLUMN = {
    "condominios": "condominio_id",
    "imoveis": "imovel_id",
    "moradores": "morador_id",
    "transacoes": "transacao_id",
}
COLUMNS = {
    "condominios": ["nome", "endereco"],
    "imoveis": ["tipo", "condominio_id", "valor"],
    "moradores": ["nome", "condominio_id", "data_registro"],
    "transacoes": ["imovel_id", "morador_id", "data_transacao", "valor_transacao"],
}
TEXT_LIMITS = {"nome": 255, "tipo": 50, "endereco": None}
INTEGER_COLUMNS = {"condominio_id", "imovel_id", "morador_id", "transacao_id"}
DATE_COLUMNS = {"data_registro", "data_transacao"}
MONEY_COLUMNS = {"valor", "valor_transacao"}
PROPERTY_TYPES = {
    "Apartamento",
    "Casa",
    "Cobertura",
    "Duplex",
    "Kitnet",
    "Loja",
    "Sala Comercial",
    "Terreno",
}


# -- an independent validator, from the rules ----------------------------------------


def _integer_ok(text: str) -> bool:
    return re.fullmatch(r"[0-9]+", text) is not None and 0 < int(text) <= 2**31 - 1


def _date_ok(text: str) -> bool:
    if re.fullmatch(r"[0-9]{4}-[0-9]{2}-[0-9]{2}", text) is None:
        return False
    try:
        date.fromisoformat(text)
    except ValueError:
        return False
    return True


def _amount_ok(text: str) -> bool:
    if re.fullmatch(r"[0-9]+(\.[0-9]{1,2})?", text) is None:
        return False
    return Decimal(0) < Decimal(text) < Decimal(10) ** 13


def _value_reason(column: str, raw: str) -> str | None:
    """The loader's reason to reject one field's value, or None when it is good."""
    if column in TEXT_LIMITS:
        text = raw.strip()
        limit = TEXT_LIMITS[column]
        if not text:
            return "required"
        return "too_long" if limit is not None and len(text) > limit else None
    if column in INTEGER_COLUMNS:
        return None if _integer_ok(raw) else "invalid_integer"
    if column in DATE_COLUMNS:
        return None if _date_ok(raw) else "invalid_date"
    if column in MONEY_COLUMNS:
        return None if _amount_ok(raw) else "invalid_amount"
    raise AssertionError(f"unexpected column {column}")


def row_reasons(entity: str, header: list[str], row: list[str]) -> tuple[set[str], dict]:
    """The loader's reasons for one parsed row, and the row as a dict when it has the
    right shape."""
    if len(row) != len(header):
        if entity == "condominios" and len(row) > len(header) and header[-1] == "endereco":
            row = [*row[: len(header) - 1], ",".join(row[len(header) - 1 :])]
        else:
            return {"field_count"}, {}
    values = dict(zip(header, row, strict=True))
    reasons = {r for column, raw in values.items() if (r := _value_reason(column, raw))}
    return reasons, values


def validate(out: Path) -> dict[str, dict]:
    """Per file: header, rows (as dicts, keyed by id), reason counts, good ids."""
    result: dict[str, dict] = {}
    for name in FILES:
        entity = name.removesuffix(".csv")
        text = (out / name).read_text(encoding="utf-8")
        records = list(csv.reader(io.StringIO(text, newline="")))
        header, data = records[0], [r for r in records[1:] if r]
        with_ids = header[0] == ID_COLUMN[entity]
        assert header == ([ID_COLUMN[entity]] if with_ids else []) + COLUMNS[entity]
        counts: Counter[str] = Counter()
        good: dict[int, dict] = {}
        multi = []
        for position, row in enumerate(data, start=1):
            reasons, values = row_reasons(entity, header, row)
            if len(reasons) > 1:
                multi.append((position, row, reasons))
            counts.update(reasons)
            if not reasons:
                ident = int(values[ID_COLUMN[entity]]) if with_ids else position
                good[ident] = values
        assert not multi, f"{name}: rows with more than one reason: {multi[:3]}"
        result[entity] = {"rows": len(data), "counts": counts, "good": good, "data": data}
    return result


# -- tests ------------------------------------------------------------------------------


def _digest(out: Path) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(out.iterdir())}


def test_same_seed_same_bytes_other_seed_other_bytes(tmp_path: Path) -> None:
    a, b, c = tmp_path / "a", tmp_path / "b", tmp_path / "c"
    generate(a, 120_000, seed=7, error_rate=0.02)
    generate(b, 120_000, seed=7, error_rate=0.02)
    generate(c, 120_000, seed=8, error_rate=0.02)
    assert sorted(_digest(a)) == sorted([*FILES, "_expected.json"])
    assert _digest(a) == _digest(b)
    differing = [n for n in FILES if _digest(a)[n] != _digest(c)[n]]
    assert differing == list(FILES)


@pytest.mark.parametrize("with_ids", [False, True], ids=["positional", "with_ids"])
def test_worker_processes_do_not_change_a_byte(tmp_path: Path, with_ids: bool) -> None:
    one, two = tmp_path / "one", tmp_path / "two"
    a = generate(one, 130_000, seed=4, error_rate=0.03, with_ids=with_ids, jobs=1)
    b = generate(two, 130_000, seed=4, error_rate=0.03, with_ids=with_ids, jobs=3)
    assert a == b
    assert _digest(one) == _digest(two)


def test_sizes_scale_with_transactions(tmp_path: Path) -> None:
    small, large = sizes(10_000), sizes(1_000_000)
    assert large["transacoes"] == 100 * small["transacoes"]
    for entity in ("condominios", "imoveis", "moradores"):
        assert large[entity] >= 50 * small[entity], entity
    assert sizes(1_000_000) == {
        "condominios": 500,
        "imoveis": 50_000,
        "moradores": 66_667,
        "transacoes": 1_000_000,
    }
    assert sizes(10)["condominios"] == 3  # never fewer than three condominiums
    assert sizes(0)["transacoes"] == 0
    generate(tmp_path, 30_000, seed=1)
    parsed = validate(tmp_path)
    assert {e: v["rows"] for e, v in parsed.items()} == sizes(30_000)


def test_clean_extract_is_realistic_and_referentially_valid(tmp_path: Path) -> None:
    expected = generate(tmp_path, 40_000, seed=3)
    parsed = validate(tmp_path)
    for entity, info in parsed.items():
        assert sum(info["counts"].values()) == 0, entity
        assert sorted(info["good"]) == list(range(1, info["rows"] + 1))
        assert expected["files"][f"{entity}.csv"]["high_water"] == info["rows"]

    condos = parsed["condominios"]["good"]
    addresses = [c["endereco"] for c in condos.values()]
    assert any("," in a for a in addresses), "some addresses must contain commas"
    assert any("," not in a for a in addresses)
    raw = (tmp_path / "condominios.csv").read_text(encoding="utf-8")
    assert '"' in raw  # the commas are quoted, not left to the loader's repair
    names = [m["nome"] for m in parsed["moradores"]["good"].values()]
    assert sum(bool(re.search(r"[ãáâàéêíóôõúçÃÁÂÉÍÓÔÚÇ]", n)) for n in names) > len(names) / 10
    assert len(set(names)) > len(names) / 4

    imoveis = parsed["imoveis"]["good"]
    types = Counter(i["tipo"] for i in imoveis.values())
    assert set(types) <= PROPERTY_TYPES and len(types) >= 6
    assert types.most_common(1)[0][0] == "Apartamento"
    for imovel in imoveis.values():
        assert int(imovel["condominio_id"]) in condos
        assert Decimal(20_000) <= Decimal(imovel["valor"]) <= Decimal(20_000_000)
    kitnet = [Decimal(i["valor"]) for i in imoveis.values() if i["tipo"] == "Kitnet"]
    cobertura = [Decimal(i["valor"]) for i in imoveis.values() if i["tipo"] == "Cobertura"]
    assert sum(kitnet) / len(kitnet) < sum(cobertura) / len(cobertura) / 3

    moradores = parsed["moradores"]["good"]
    assert all(int(m["condominio_id"]) in condos for m in moradores.values())
    transacoes = parsed["transacoes"]["good"].values()
    days = sorted(t["data_transacao"] for t in transacoes)
    assert days[0].startswith("2023-01") and days[-1].startswith("2024-12")
    for t in transacoes:
        imovel = imoveis[int(t["imovel_id"])]
        morador = moradores[int(t["morador_id"])]
        # residents transact in the condominium they live in
        assert morador["condominio_id"] == imovel["condominio_id"]
    total = sum(Decimal(t["valor_transacao"]) for t in transacoes)
    assert expected["files"]["transacoes.csv"]["loaded_sum_valor"] == str(total)


@pytest.mark.parametrize("with_ids", [False, True], ids=["positional", "with_ids"])
def test_error_injection_matches_expected(tmp_path: Path, with_ids: bool) -> None:
    rate = 0.05
    expected = generate(tmp_path, 60_000, seed=11, error_rate=rate, with_ids=with_ids)
    parsed = validate(tmp_path)
    on_disk = json.loads((tmp_path / "_expected.json").read_text(encoding="utf-8"))
    assert on_disk == expected
    total_rows = total_bad = 0
    for entity, info in parsed.items():
        exp = expected["files"][f"{entity}.csv"]
        counts = {k: v for k, v in info["counts"].items() if v}
        assert counts == {k: v for k, v in exp["rejected_by_reason"].items() if v}, entity
        assert exp["rows"] == info["rows"] == exp["loaded"] + exp["rejected"]
        assert exp["loaded"] == len(info["good"])
        total_rows += info["rows"]
        total_bad += exp["rejected"]
    # Rows turn bad independently with probability `rate`: within 5 standard deviations.
    sigma = math.sqrt(total_rows * rate * (1 - rate))
    assert abs(total_bad - total_rows * rate) < 5 * sigma
    # Each reason that applies is drawn uniformly: all of them show up.
    tx = parsed["transacoes"]["counts"]
    assert set(tx) == {"field_count", "invalid_integer", "invalid_date", "invalid_amount"}
    for reason in tx:
        assert abs(tx[reason] - expected["files"]["transacoes.csv"]["rejected"] / 4) < 150
    assert set(parsed["moradores"]["counts"]) == {
        "field_count",
        "required",
        "too_long",
        "invalid_integer",
        "invalid_date",
    }
    assert set(parsed["imoveis"]["counts"]) == {
        "field_count",
        "required",
        "too_long",
        "invalid_integer",
        "invalid_amount",
    }
    # Good rows only reference good parents, so silver keeps every one of them.
    assert expected["good_rows_reference_loaded_parents"] is True
    good = {e: info["good"] for e, info in parsed.items()}
    for child in ("imoveis", "moradores"):
        assert all(int(r["condominio_id"]) in good["condominios"] for r in good[child].values())
    for t in good["transacoes"].values():
        assert int(t["imovel_id"]) in good["imoveis"]
        assert int(t["morador_id"]) in good["moradores"]
    total = sum(Decimal(t["valor_transacao"]) for t in good["transacoes"].values())
    assert expected["files"]["transacoes.csv"]["loaded_sum_valor"] == str(total)
    total = sum(Decimal(i["valor"]) for i in good["imoveis"].values())
    assert expected["files"]["imoveis.csv"]["loaded_sum_valor"] == str(total)


def test_high_water_with_ids_skips_rows_without_a_valid_id(tmp_path: Path) -> None:
    expected = generate(tmp_path, 2_000, seed=5, error_rate=0.5, with_ids=True)
    for name in FILES:
        entity = name.removesuffix(".csv")
        rows = list(csv.reader((tmp_path / name).open(encoding="utf-8", newline="")))[1:]
        # From the rules: the largest valid id among rows with the right field count.
        width = len(COLUMNS[entity]) + 1
        valid = [int(r[0]) for r in rows if len(r) == width and _integer_ok(r[0])]
        assert expected["files"][name]["high_water"] == max(valid, default=0), name


def test_every_row_bad_at_rate_one(tmp_path: Path) -> None:
    expected = generate(tmp_path, 3_000, seed=2, error_rate=1.0)
    parsed = validate(tmp_path)
    for entity, info in parsed.items():
        assert info["good"] == {}
        assert expected["files"][f"{entity}.csv"]["loaded"] == 0
    # condominios has no integer column without ids, and extra fields are repaired there
    assert set(parsed["condominios"]["counts"]) <= {"field_count", "required", "too_long"}


def test_cli_writes_the_files_and_rejects_bad_options(tmp_path: Path) -> None:
    condo = [sys.executable, "-m", "spark_loaders.cli", "generate"]
    done = subprocess.run(
        [*condo, "--out", str(tmp_path / "x"), "--transactions", "500", "--with-ids"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert "transacoes.csv" in done.stdout
    header = (tmp_path / "x" / "transacoes.csv").read_text(encoding="utf-8").splitlines()[0]
    assert header == "transacao_id,imovel_id,morador_id,data_transacao,valor_transacao"
    bad = subprocess.run(
        [*condo, "--out", str(tmp_path / "y"), "--transactions", "5", "--error-rate", "1.5"],
        capture_output=True,
        text=True,
    )
    assert bad.returncode != 0 and "between 0 and 1" in bad.stderr
    assert "Traceback" not in bad.stderr
    (tmp_path / "file").write_text("")
    bad = subprocess.run(
        [*condo, "--out", str(tmp_path / "file"), "--transactions", "5"],
        capture_output=True,
        text=True,
    )
    assert bad.returncode != 0 and "not a directory" in bad.stderr
    assert "Traceback" not in bad.stderr
    sample = Path(__file__).resolve().parents[2] / "data" / "sample"
    before = {p.name: p.read_bytes() for p in sample.iterdir()}
    bad = subprocess.run(
        [*condo, "--out", str(sample), "--transactions", "5"], capture_output=True, text=True
    )
    assert bad.returncode != 0 and "refusing to overwrite the bundled sample" in bad.stderr
    assert {p.name: p.read_bytes() for p in sample.iterdir()} == before
    # files the loader would also pick up are pointed out
    (tmp_path / "x" / "Transacoes_2023.csv").write_text("imovel_id\n")
    again = subprocess.run(
        [*condo, "--out", str(tmp_path / "x"), "--transactions", "50"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert "also holds Transacoes_2023.csv" in again.stdout


def _dangling_references(parsed: dict[str, dict]) -> int:
    good = {e: info["good"] for e, info in parsed.items()}
    dangling = sum(
        int(r["condominio_id"]) not in good["condominios"]
        for child in ("imoveis", "moradores")
        for r in good[child].values()
    )
    return dangling + sum(
        int(t["imovel_id"]) not in good["imoveis"] or int(t["morador_id"]) not in good["moradores"]
        for t in good["transacoes"].values()
    )


@pytest.mark.parametrize(
    ("n", "rate", "seed"), [(7, 0.5, 3), (7, 1.0, 3), (40, 0.6, 4), (400, 0.3, 5)]
)
def test_parent_flag_tells_exactly_whether_good_rows_dangle(
    tmp_path: Path, n: int, rate: float, seed: int
) -> None:
    # With three condominiums and a high error rate, all of them can be broken; then good
    # children must reference broken parents, and _expected.json has to say so.
    expected = generate(tmp_path, n, seed=seed, error_rate=rate)
    dangling = _dangling_references(validate(tmp_path))
    assert expected["good_rows_reference_loaded_parents"] is (dangling == 0)
