"""``condo generate``: write a realistic synthetic extract of the four source files."""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

from spark_loaders.errors import CondoError
from spark_loaders.paths import sample_dir


def _non_negative_int(text: str) -> int:
    try:
        value = int(text.replace("_", ""))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be >= 0, got {value}")
    return value


def _rate(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected a number between 0 and 1, got {text!r}"
        ) from None
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError(f"must be between 0 and 1, got {text}")
    return value


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser(
        "generate",
        help="write a synthetic extract (condominios, imoveis, moradores, transacoes)",
        description=(
            "Write condominios.csv, imoveis.csv, moradores.csv and transacoes.csv with "
            "realistic Brazilian data, sized from the number of transactions, plus "
            "_expected.json with the row and reject counts a correct load must report. "
            "The same seed always gives byte-identical files."
        ),
    )
    parser.add_argument("--out", required=True, type=Path, help="directory to write into")
    parser.add_argument(
        "--transactions",
        "-n",
        required=True,
        type=_non_negative_int,
        metavar="N",
        help="number of transactions; the other files scale from it",
    )
    parser.add_argument("--seed", type=int, default=42, help="random seed (default 42)")
    parser.add_argument(
        "--error-rate",
        type=_rate,
        default=0.0,
        metavar="R",
        help="probability that a row carries exactly one defect the loader rejects (default 0)",
    )
    parser.add_argument(
        "--jobs",
        "-j",
        type=_non_negative_int,
        default=0,
        metavar="J",
        help="worker processes for the transactions (default 0: one per CPU, at most 8); "
        "the output does not depend on it",
    )
    ids = parser.add_mutually_exclusive_group()
    ids.add_argument(
        "--with-ids",
        dest="with_ids",
        action="store_true",
        help="write each entity's id column first",
    )
    ids.add_argument(
        "--positional",
        dest="with_ids",
        action="store_false",
        help="omit the id columns, like the sample (default): ids are 1..n in row order",
    )
    parser.set_defaults(func=run, with_ids=False)


def run(args: argparse.Namespace) -> int:
    from spark_loaders.generate import generate

    out: Path = args.out
    if out.exists() and not out.is_dir():
        raise CondoError(f"--out {out} exists and is not a directory")
    if out.resolve() == sample_dir().resolve():
        raise CondoError(f"refusing to overwrite the bundled sample in {out}; choose another --out")
    started = time.perf_counter()
    try:
        expected = generate(
            out,
            args.transactions,
            seed=args.seed,
            error_rate=args.error_rate,
            with_ids=args.with_ids,
            jobs=args.jobs or min(os.cpu_count() or 1, 8),
        )
    except OSError as exc:
        raise CondoError(f"cannot write to {out}: {exc.strerror or exc}") from None
    elapsed = time.perf_counter() - started
    total_bytes = 0
    for name, info in expected["files"].items():
        total_bytes += info["bytes"]
        print(
            f"{name:16} {info['rows']:>12,} rows  {info['rejected']:>10,} bad  "
            f"{info['bytes'] / 1e6:>9.1f} MB"
        )
    print(
        f"wrote {out}/ ({total_bytes / 1e6:.1f} MB, expected counts in _expected.json) "
        f"in {elapsed:.1f}s"
    )
    others = _other_entity_files(out, set(expected["files"]))
    if others:
        print(
            f"note: {out} also holds {', '.join(others)}; `condo load {out}` would load those too"
        )
    return 0


def _other_entity_files(out: Path, written: set[str]) -> list[str]:
    """CSV files besides ours whose names make the loader take them for an entity's."""
    from spark_loaders.domain import ENTITY_ORDER

    prefixes = ENTITY_ORDER
    return sorted(
        p.name
        for p in out.iterdir()
        if p.is_file()
        and p.name not in written
        and p.name.lower().startswith(prefixes)
        and p.suffix.lower() == ".csv"
    )
