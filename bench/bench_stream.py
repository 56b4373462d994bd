"""Streaming ingestion benchmark: landing-to-bronze latency and backlog throughput.

1. Latency: the stream runs with a 1 s trigger; small transaction files are renamed into the
   landing directory one at a time, at random points of the trigger cycle, and the time until
   the file's ``ops.loads`` entry is ``loaded`` (its rows are committed in bronze) is measured.
   Reports the median and p95.
2. Backlog: N transactions split into F files. The same files are loaded by the batch loader
   (what ``condo load`` runs, in this process so Spark start-up is excluded from both) and by
   ``condo stream --available-now``, each into its own fresh database, twice each in the order
   batch, stream, stream, batch. Reports rows/s and the stream/batch time ratio.

Runs against the configured PostgreSQL (embedded by default) in throw-away databases.

    .venv/bin/python bench/bench_stream.py [--latency-files 25] [--rows 1000000] [--files 100]
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import sys
import tempfile
import threading
import time
import uuid
from contextlib import contextmanager
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import psycopg

from spark_loaders import connection

HEADER = b"imovel_id,morador_id,data_transacao,valor_transacao\n"


def transactions(n: int, seed: int) -> bytes:
    rnd = random.Random(seed)
    lines = [HEADER]
    for _ in range(n):
        lines.append(
            b"%d,%d,2024-%02d-%02d,%d.%02d\n"
            % (
                rnd.randint(1, 5000),
                rnd.randint(1, 20000),
                rnd.randint(1, 12),
                rnd.randint(1, 28),
                rnd.randint(1, 2_000_000),
                rnd.randint(0, 99),
            )
        )
    return b"".join(lines)


def land(landing: Path, name: str, data: bytes) -> float:
    """Write under a hidden name, rename in; returns the time of the rename."""
    tmp = landing / f".{name}.tmp"
    tmp.write_bytes(data)
    os.replace(tmp, landing / name)
    return time.monotonic()


@contextmanager
def scratch_database(admin: connection.ConnectionInfo, keep: bool):
    name = f"bench_stream_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(**{**admin.psycopg_kwargs(), "dbname": "postgres"}, autocommit=True) as c:
        c.execute(f'create database "{name}"')
    info = connection.ConnectionInfo(
        admin.host, admin.port, admin.user, admin.password, name, source="url"
    )
    previous = os.environ.get("CONDO_DATABASE_URL")
    os.environ["CONDO_DATABASE_URL"] = info.url()
    try:
        yield info
    finally:
        if previous is None:
            os.environ.pop("CONDO_DATABASE_URL", None)
        else:
            os.environ["CONDO_DATABASE_URL"] = previous
        if not keep:
            with psycopg.connect(
                **{**admin.psycopg_kwargs(), "dbname": "postgres"}, autocommit=True
            ) as c:
                c.execute(f'drop database if exists "{name}" with (force)')


def stream_config(base: Path, **overrides):
    from spark_loaders.streaming.run import StreamConfig

    (base / "landing").mkdir(parents=True, exist_ok=True)
    values = {
        "landing": str(base / "landing"),
        "checkpoint": str(base / "checkpoint"),
        "archive": str(base / "processed"),
        "rejected": base / "rejected",
        "status_file": base / "status.json",
    }
    values.update(overrides)
    return StreamConfig(**values)


def bench_latency(spark, admin, work: Path, files: int, rows: int, warmup: int, keep: bool) -> dict:
    from spark_loaders.streaming.run import run_stream

    with scratch_database(admin, keep) as info:
        cfg = stream_config(work / "latency", trigger_seconds=1.0, available_now=False)
        stop = threading.Event()
        errors: list[BaseException] = []

        def target() -> None:
            try:
                run_stream(spark, cfg, stop=stop, log=lambda _line: None)
            except BaseException as exc:
                errors.append(exc)

        thread = threading.Thread(target=target, daemon=True)
        thread.start()
        while not (Path(cfg.checkpoint) / "metadata").exists():
            if errors:
                raise errors[0]
            time.sleep(0.1)
        time.sleep(2)
        latencies: list[float] = []
        processing: list[float | None] = []
        rnd = random.Random(7)
        with psycopg.connect(**info.psycopg_kwargs(), autocommit=True) as conn:
            for i in range(warmup + files):
                name = f"transacoes_lat_{i:04d}.csv"
                landed = land(Path(cfg.landing), name, transactions(rows, seed=i))
                while not conn.execute(
                    "select 1 from ops.loads where source_file = %s and status = 'loaded'", (name,)
                ).fetchone():
                    if errors:
                        raise errors[0]
                    if time.monotonic() - landed > 60:
                        raise RuntimeError(f"{name} did not reach bronze within 60 s")
                    time.sleep(0.01)
                latencies.append(time.monotonic() - landed)
                processing.append(batch_seconds(cfg.status_file, name))
                time.sleep(rnd.uniform(0.1, 1.1))
        stop.set()
        thread.join(60)
    cold = latencies[:warmup]
    latencies = sorted(latencies[warmup:])
    batch_times = [x for x in processing[warmup:] if x is not None]
    p95 = latencies[min(len(latencies) - 1, round(0.95 * (len(latencies) - 1)))]
    return {
        "files": files,
        "rows_per_file": rows,
        "median_s": statistics.median(latencies),
        "p95_s": p95,
        "max_s": latencies[-1],
        "min_s": latencies[0],
        "warmup_s": cold,
        "batch_median_s": statistics.median(batch_times) if batch_times else float("nan"),
    }


def batch_seconds(status_file: Path, name: str) -> float | None:
    """Time the micro-batch that carried ``name`` spent in foreachBatch (file list, loader,
    ledger), from the status file; the rest of the latency is trigger wait and Spark planning."""
    import json

    deadline = time.monotonic() + 2
    while time.monotonic() < deadline:
        try:
            last = json.loads(status_file.read_text()).get("last_batch") or {}
        except (OSError, ValueError):
            last = {}
        if any(Path(f["path"]).name == name for f in last.get("files", [])):
            return last["duration_ms"] / 1000
        time.sleep(0.02)
    return None


def bench_backlog(
    spark, admin, work: Path, total_rows: int, files: int, max_files: int, keep: bool
) -> dict:
    """Batch and stream on the same files, in A-B-B-A order so that a drift in the machine's
    load (or in JIT warm-up) weighs on both equally."""
    source = work / "backlog_files"
    source.mkdir(parents=True, exist_ok=True)
    per_file = total_rows // files
    paths = []
    for i in range(files):
        path = source / f"transacoes_{i:04d}.csv"
        path.write_bytes(transactions(per_file, seed=1000 + i))
        paths.append(path)
    rows = per_file * files

    batch_times: list[float] = []
    stream_times: list[float] = []
    micro_batches = 0
    for round_no, kind in enumerate(("batch", "stream", "stream", "batch")):
        if kind == "batch":
            batch_times.append(_batch_run(spark, admin, paths, rows, keep))
        else:
            seconds, micro_batches = _stream_run(
                spark, admin, work / f"stream_{round_no}", paths, rows, max_files, keep
            )
            stream_times.append(seconds)
        last = batch_times[-1] if kind == "batch" else stream_times[-1]
        print(f"  backlog round {round_no + 1}/4 ({kind}): {last:.1f} s", flush=True)
    batch_seconds = statistics.mean(batch_times)
    stream_seconds = statistics.mean(stream_times)
    return {
        "rows": rows,
        "files": files,
        "max_files_per_trigger": max_files,
        "micro_batches": micro_batches,
        "batch_runs": batch_times,
        "stream_runs": stream_times,
        "batch_seconds": batch_seconds,
        "stream_seconds": stream_seconds,
        "batch_rows_per_s": rows / batch_seconds,
        "stream_rows_per_s": rows / stream_seconds,
        "ratio": stream_seconds / batch_seconds,
    }


def _batch_run(spark, admin, paths: list[Path], rows: int, keep: bool) -> float:
    from spark_loaders.ingest.api import ingest_files

    with scratch_database(admin, keep):
        t0 = time.monotonic()
        report = ingest_files(spark, [str(p) for p in paths], mode="batch", progress=False)
        seconds = time.monotonic() - t0
        assert sum(f.rows_loaded for f in report.files) == rows, "batch load lost rows"
    return seconds


def _stream_run(
    spark, admin, base: Path, paths: list[Path], rows: int, max_files: int, keep: bool
) -> tuple[float, int]:
    from spark_loaders.streaming.run import run_stream

    with scratch_database(admin, keep) as info:
        cfg = stream_config(base, available_now=True, max_files_per_trigger=max_files)
        for i, p in enumerate(paths):
            target = Path(cfg.landing) / p.name
            os.link(p, target)
            os.utime(target, (1_700_000_000 + i, 1_700_000_000 + i))
        t0 = time.monotonic()
        run_stream(spark, cfg, log=lambda _line: None)
        seconds = time.monotonic() - t0
        with psycopg.connect(**info.psycopg_kwargs()) as conn:
            loaded = conn.execute("select count(*) from bronze.transacoes").fetchone()[0]
            batches = conn.execute("select count(*) from ops.stream_batches").fetchone()[0]
        assert loaded == rows, f"stream loaded {loaded} of {rows} rows"
    return seconds, batches


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--latency-files", type=int, default=25, help="files for the latency run")
    parser.add_argument("--latency-rows", type=int, default=100, help="rows per latency file")
    parser.add_argument(
        "--warmup-files",
        type=int,
        default=2,
        help="files landed first and reported apart (JVM and Python workers warming up)",
    )
    parser.add_argument("--rows", type=int, default=1_000_000, help="backlog transactions")
    parser.add_argument("--files", type=int, default=100, help="backlog files")
    parser.add_argument("--max-files-per-trigger", type=int, default=20)
    parser.add_argument("--skip-latency", action="store_true")
    parser.add_argument("--skip-backlog", action="store_true")
    parser.add_argument("--keep", action="store_true", help="keep the scratch databases")
    args = parser.parse_args()

    os.environ.setdefault("CONDO_SPARK_MASTER", "local[2]")
    admin = connection.resolve()
    from spark_loaders.spark_session import get_spark

    t0 = time.monotonic()
    spark = get_spark("bench-stream")
    print(f"spark start-up: {time.monotonic() - t0:.1f} s (excluded below)")
    with tempfile.TemporaryDirectory(prefix="bench-stream-") as tmp:
        work = Path(tmp)
        if not args.skip_latency:
            lat = bench_latency(
                spark,
                admin,
                work,
                args.latency_files,
                args.latency_rows,
                args.warmup_files,
                args.keep,
            )
            print(
                f"latency, {lat['files']} files x {lat['rows_per_file']} rows, 1 s trigger: "
                f"median {lat['median_s']:.2f} s, p95 {lat['p95_s']:.2f} s "
                f"(min {lat['min_s']:.2f}, max {lat['max_s']:.2f}); goal median < 3 s, p95 < 5 s\n"
                f"  of which inside the micro-batch (file list, loader, ledger): median "
                f"{lat['batch_median_s']:.2f} s; the rest is the trigger wait and Spark planning\n"
                f"  warm-up files, not counted: {', '.join(f'{x:.2f} s' for x in lat['warmup_s'])}"
            )
        if not args.skip_backlog:
            bl = bench_backlog(
                spark, admin, work, args.rows, args.files, args.max_files_per_trigger, args.keep
            )
            print(
                f"backlog, {bl['rows']:,} transactions in {bl['files']} files "
                f"(mean of 2 runs each, order batch-stream-stream-batch):\n"
                f"  batch loader (condo load): {bl['batch_seconds']:.1f} s, "
                f"{bl['batch_rows_per_s']:,.0f} rows/s\n"
                f"  condo stream --available-now ({bl['micro_batches']} micro-batches of <= "
                f"{bl['max_files_per_trigger']} files): {bl['stream_seconds']:.1f} s, "
                f"{bl['stream_rows_per_s']:,.0f} rows/s\n"
                f"  stream / batch time ratio: {bl['ratio']:.2f}x (goal <= 1.5x)"
            )
    spark.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
