"""What a Spark standalone round trip costs: the sample pipeline and a load of N generated
transactions, each as the user runs it (``condo pipeline`` / ``condo load`` in a process of
its own), in local mode (``local[2]``) and on a local standalone cluster (one master, one
worker with 2 cores, started from the venv's pyspark exactly as the tests start it), in the
same run, on fresh databases of one embedded PostgreSQL. Modes alternate with ``--repeat``;
the median is reported.

    .venv/bin/python bench/bench_cluster.py --rows 1000000 --repeat 1
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

PROJECT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(PROJECT))
sys.path.insert(0, str(PROJECT / "tests" / "python"))

from pg_helpers import scratch_database  # noqa: E402
from spark_cluster import start_cluster  # noqa: E402

CONDO = str(PROJECT / ".venv" / "bin" / "condo")


def timed(args: list[str], env: dict[str, str]) -> float:
    started = time.monotonic()
    result = subprocess.run(args, cwd=PROJECT, env=env, capture_output=True, text=True)
    seconds = time.monotonic() - started
    if result.returncode != 0:
        raise SystemExit(
            f"{' '.join(args)} failed:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
        )
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=1)
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="condo-bench-cluster-"))
    os.environ["CONDO_STATE_DIR"] = str(work / "state")
    os.environ["CONDO_HOME"] = str(PROJECT)
    for key in ("CONDO_DATABASE_URL", "PGHOST"):
        os.environ.pop(key, None)
    from spark_loaders import embedded_pg

    extract = work / "extract"
    subprocess.run(
        [CONDO, "generate", "--out", str(extract), "--transactions", str(args.rows)],
        check=True, cwd=PROJECT, capture_output=True,
    )  # fmt: skip
    # Only the transactions file is timed for the load; its parents go in first.
    server = embedded_pg.ensure_running()
    times: dict[tuple[str, str], list[float]] = {}
    try:
        with start_cluster() as cluster:
            modes = {"local": "local[2]", "cluster": cluster.url}
            for round_ in range(args.repeat):
                order = list(modes.items()) if round_ % 2 == 0 else list(modes.items())[::-1]
                for name, master in order:
                    with scratch_database(server, prefix="bench") as db:
                        env = {**cluster.env, "CONDO_DATABASE_URL": db.url(),
                               "CONDO_SPARK_MASTER": master}  # fmt: skip
                        out = work / f"lake-{name}-{round_}"
                        times.setdefault((name, "pipeline"), []).append(timed(
                            [CONDO, "pipeline", "--out", str(out), "--max-rows", "0"], env
                        ))  # fmt: skip
                    with scratch_database(server, prefix="bench") as db:
                        env = {**cluster.env, "CONDO_DATABASE_URL": db.url(),
                               "CONDO_SPARK_MASTER": master}  # fmt: skip
                        times.setdefault((name, "load"), []).append(
                            timed([CONDO, "load", "--quiet", str(extract)], env)
                        )
                    print(f"round {round_ + 1} {name}: done", flush=True)
    finally:
        embedded_pg.stop()
    print(f"\nload average now: {os.getloadavg()[0]:.1f} (the machine is shared)")
    print("| step | local[2] s | cluster s | cluster / local |\n|---|---:|---:|---:|")
    for step, label in (("pipeline", "sample pipeline (condo pipeline)"),
                        ("load", f"load of {args.rows:,} transactions + parents (condo load)")):  # fmt: skip
        local = statistics.median(times[("local", step)])
        remote = statistics.median(times[("cluster", step)])
        print(f"| {label} | {local:.1f} | {remote:.1f} | {remote / local:.2f} |")


if __name__ == "__main__":
    main()
