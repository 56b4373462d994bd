"""Benchmark of ``condo generate`` against baselines measured in the same run.

    .venv/bin/python bench/bench_generate.py                 # N = 1,000,000
    .venv/bin/python bench/bench_generate.py -n 1000000 -n 10000000

For each N, each workload runs in its own subprocess (so peak memory is its own):

* ``io_floor``: writes the same number of bytes as the generated files, from one
  pre-encoded block written over and over: the cost of the disk writes alone.
* ``naive``: the obvious generator, ``csv.writer.writerow`` per transaction with
  ``random.choice``/``randint`` per field (transactions only, so it does less work).
* ``generate``: ``spark_loaders.generate.generate`` for all four files, again with
  ``--error-rate 0.01``, and with two worker processes (``--jobs 2``; its CPU column is
  the parent's only).

It prints wall and CPU seconds (CPU time is steadier on a shared machine), transactions/s,
MB/s, peak RSS and the ratios against the I/O floor and the naive generator.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _child_generate(n: int, out: Path, rate: float, jobs: int = 1) -> dict:
    from spark_loaders.generate import generate

    start = time.perf_counter()
    expected = generate(out, n, seed=1, error_rate=rate, jobs=jobs)
    seconds = time.perf_counter() - start
    files = expected["files"].values()
    return {
        "seconds": seconds,
        "bytes": sum(f["bytes"] for f in files),
        "rows": sum(f["rows"] for f in files),
    }


def _child_io_floor(total_bytes: int, out: Path) -> dict:
    line = "12345,23456,2024-06-15,1234567.89\n"
    block = (line * 50_000).encode("utf-8")
    start = time.perf_counter()
    written = 0
    with (out / "floor.csv").open("wb", buffering=1 << 20) as fh:
        while written < total_bytes:
            chunk = block[: total_bytes - written]
            fh.write(chunk)
            written += len(chunk)
    seconds = time.perf_counter() - start
    return {"seconds": seconds, "bytes": written, "rows": written // len(line)}


def _child_naive(n: int, out: Path) -> dict:
    import csv
    import random
    from datetime import date, timedelta

    rng = random.Random(1)
    first = date(2023, 1, 1)
    start = time.perf_counter()
    path = out / "transacoes.csv"
    with path.open("w", encoding="utf-8", newline="") as fh:
        writer = csv.writer(fh, lineterminator="\n")
        writer.writerow(["imovel_id", "morador_id", "data_transacao", "valor_transacao"])
        for _ in range(n):
            writer.writerow(
                [
                    rng.randint(1, max(1, n // 20)),
                    rng.randint(1, max(1, n // 15)),
                    (first + timedelta(days=rng.randint(0, 730))).isoformat(),
                    f"{rng.uniform(100_000, 3_000_000):.2f}",
                ]
            )
    seconds = time.perf_counter() - start
    return {"seconds": seconds, "bytes": path.stat().st_size, "rows": n}


def _child(argv: list[str]) -> None:
    kind, arg, out = argv[0], argv[1], Path(argv[2])
    if kind == "generate":
        result = _child_generate(int(arg), out, 0.0)
    elif kind == "generate_jobs2":
        result = _child_generate(int(arg), out, 0.0, jobs=2)
    elif kind == "generate_errors":
        result = _child_generate(int(arg), out, 0.01)
    elif kind == "io_floor":
        result = _child_io_floor(int(arg), out)
    elif kind == "naive":
        result = _child_naive(int(arg), out)
    else:
        raise SystemExit(f"unknown workload {kind}")
    result["peak_rss_mb"] = _peak_rss_mb()
    usage = resource.getrusage(resource.RUSAGE_SELF)
    result["cpu_seconds"] = usage.ru_utime + usage.ru_stime
    print(json.dumps(result))


def _run(kind: str, arg: int, scratch: Path) -> dict:
    out = scratch / kind
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    done = subprocess.run(
        [sys.executable, __file__, "--_child", kind, str(arg), str(out)],
        capture_output=True,
        text=True,
        check=True,
    )
    shutil.rmtree(out, ignore_errors=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def _line(name: str, r: dict, transactions: int) -> str:
    return (
        f"  {name:22} {r['seconds']:8.2f} s  (cpu {r['cpu_seconds']:7.2f} s)  "
        f"{transactions / r['seconds'] / 1e6:7.2f} M tx/s  "
        f"{r['bytes'] / r['seconds'] / 1e6:8.1f} MB/s  {r['bytes'] / 1e6:8.1f} MB  "
        f"peak {r['peak_rss_mb']:6.0f} MB"
    )


def main() -> int:
    if len(sys.argv) > 1 and sys.argv[1] == "--_child":
        _child(sys.argv[2:])
        return 0
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "-n",
        "--transactions",
        type=int,
        action="append",
        help="transactions to generate (repeatable; default 1,000,000)",
    )
    parser.add_argument(
        "--scratch",
        type=Path,
        default=None,
        help="directory for the temporary files (default: a new temp dir)",
    )
    parser.add_argument(
        "--skip-naive", action="store_true", help="skip the slow naive csv.writer baseline"
    )
    args = parser.parse_args()
    sizes = args.transactions or [1_000_000]
    scratch = args.scratch or Path(tempfile.mkdtemp(prefix="bench-generate-"))
    print(f"python {sys.version.split()[0]}, {os.cpu_count()} CPUs, scratch {scratch}")
    try:
        for n in sizes:
            print(f"\nN = {n:,} transactions")
            gen = _run("generate", n, scratch)
            gen_err = _run("generate_errors", n, scratch)
            gen_jobs = _run("generate_jobs2", n, scratch)
            floor = _run("io_floor", gen["bytes"], scratch)
            print(_line("io_floor (same bytes)", floor, n))
            naive = None if args.skip_naive else _run("naive", n, scratch)
            if naive:
                print(_line("naive csv.writer", naive, n))
            print(_line("condo generate", gen, n))
            print(_line("  with --error-rate .01", gen_err, n))
            print(_line("  with --jobs 2", gen_jobs, n))
            print(f"  generate / io_floor      {gen['seconds'] / floor['seconds']:6.1f}x the time")
            print(
                f"  errors / no errors       {gen_err['cpu_seconds'] / gen['cpu_seconds']:6.2f}x cpu"
            )
            print(f"  jobs 1 / jobs 2          {gen['seconds'] / gen_jobs['seconds']:6.2f}x wall")
            if naive:
                print(
                    f"  naive / generate         {naive['seconds'] / gen['seconds']:6.1f}x "
                    f"(cpu {naive['cpu_seconds'] / gen['cpu_seconds']:.1f}x)"
                )
            print(f"  rows in all four files   {gen['rows']:,}")
    finally:
        if args.scratch is None:
            shutil.rmtree(scratch, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
