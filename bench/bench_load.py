"""Benchmark of the batch loader against PostgreSQL's own bulk path and the naive Spark load.

For N generated transactions (``spark_loaders.generator``), in one run against one server:

* ``copy``  : raw ``COPY ... FROM STDIN (FORMAT csv, HEADER)`` of the same file into an
              identical, empty table: the physical limit;
* ``condo`` : ``ingest_files`` (what ``condo load`` runs): parse, validate, ids, lineage,
              rejects, ledger, atomic publish, bronze indexes; the child also times the
              index steps (btree prebuilt after the COPY; BRIN and ANALYZE in the final
              transaction) and the final transaction's publishing step;
* ``condo-spark``: the same load with the vectorised path off (``CONDO_LOAD_VECTORISED=0``):
              the Spark parser and JVM checks the loader used before, for the
              before/after ratio in one run;
* ``condo-noidx``: the same load with the bronze index steps switched off in the child
              (the loader before the indexes existed), for the with/without ratio;
* ``naive`` : ``spark.read.csv(header=True, inferSchema=True)`` + ``df.write.jdbc(mode="append")``
              with default settings;
* ``pgloader``: the Debian ``pgloader`` (the classic CSV-to-PostgreSQL loader with reject
              files) loading the same file into an identical typed table, with its defaults
              (``--skip-pgloader`` leaves it out; it has no Spark, so its two times are equal).

``condo`` and ``naive`` each run in a fresh process (fresh JVM) on a fresh database; the
benchmark reports their wall time end to end (process start to exit, Spark start-up
included), the time without Spark start-up, rows/s, ratios, and the peak resident memory of
the whole process tree (driver, JVM, Python workers), sampled from /proc.

    .venv/bin/python bench/bench_load.py --rows 1000000
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

PROJECT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(PROJECT))


# -- child processes ----------------------------------------------------------------------


def _timed(module, name: str, timings: dict[str, float]) -> None:
    """Replace ``module.name`` by a wrapper that adds its wall time to ``timings[name]``."""
    real = getattr(module, name)

    def wrapper(*args, **kwargs):
        started = time.monotonic()
        try:
            return real(*args, **kwargs)
        finally:
            timings[name] = timings.get(name, 0.0) + time.monotonic() - started

    setattr(module, name, wrapper)


def _without_indexes() -> None:
    """The loader as it was before the bronze indexes: none on the parent, none prebuilt."""
    from spark_loaders.ingest import ddl, sink_postgres

    ddl.BRONZE_INDEXES = ()
    sink_postgres.prebuild_indexes = lambda conn, staging: None
    sink_postgres.prepare_attach = lambda conn, staging: None


def child(kind: str, path: str) -> None:
    started = time.monotonic()
    from spark_loaders.spark_session import get_spark, lazy_spark, require_jdbc, session_started

    if kind == "condo":
        # As `condo load` does: the session starts only if a file needs it (the vectorised
        # path runs in this process in local mode), so its start-up may never happen.
        spark = lazy_spark(f"bench-{kind}")
    else:
        spark = get_spark(f"bench-{kind}")
        spark.range(1).count()  # the session is really up
    ready = time.monotonic()
    timings: dict[str, float] = {}
    if kind.startswith("condo"):
        from spark_loaders.ingest import file_load, sink_postgres
        from spark_loaders.ingest.api import ingest_files

        if kind == "condo-noidx":
            _without_indexes()
        else:
            _timed(sink_postgres, "prebuild_indexes", timings)
            _timed(sink_postgres, "prepare_attach", timings)
        _timed(file_load, "publish_bulk", timings)
        steps = ("prescan", "write_bulk", "write_bulk_vectorised", "verify_unchanged")
        for step in (*steps, "prebuild_indexes_while"):
            _timed(file_load, step, timings)

        report = ingest_files(spark, [path], progress=False)
        result = report.files[0]
        assert result.status == "loaded", result.error
        rows = result.rows_loaded
    else:
        from spark_loaders import connection

        require_jdbc()
        info = connection.resolve()
        df = spark.read.csv(path, header=True, inferSchema=True)
        df.write.jdbc(
            info.jdbc_url(), "naive_transacoes", mode="append", properties=info.jdbc_properties()
        )
        rows = -1
    done = time.monotonic()
    print(
        json.dumps(
            {
                "startup": ready - started,
                "work": done - ready,
                "rows": rows,
                "timings": timings,
                "spark_started": session_started(spark),
            }
        )
    )


# -- measurement helpers ------------------------------------------------------------------


def _tree_usage(root: int) -> tuple[int, float]:
    """Resident bytes and CPU seconds of a process and all its descendants."""
    children: dict[int, list[int]] = {}
    rss: dict[int, int] = {}
    cpu: dict[int, float] = {}
    page = os.sysconf("SC_PAGE_SIZE")
    tick = os.sysconf("SC_CLK_TCK")
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            with open(f"/proc/{entry}/statm") as f:
                resident = int(f.read().split()[1]) * page
        except OSError:
            continue
        pid, ppid = int(entry), int(fields[1])
        children.setdefault(ppid, []).append(pid)
        rss[pid] = resident
        cpu[pid] = sum(int(x) for x in fields[11:15]) / tick
    total, seconds, stack = 0, 0.0, [root]
    while stack:
        pid = stack.pop()
        total += rss.get(pid, 0)
        seconds += cpu.get(pid, 0.0)
        stack.extend(children.get(pid, []))
    return total, seconds


def _child_env(work: Path) -> dict[str, str]:
    """The environment of a child: it caches its compiled bytecode under ``work``, as an
    installed package does. Some machines (this project's CI among them) set
    PYTHONDONTWRITEBYTECODE, and then every child compiled the ~500 modules it imports
    again: 0.5 s of "work" that no user pays on every load."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    env["PYTHONPYCACHEPREFIX"] = str(work / "pycache")
    return env


def warm_bytecode_cache(work: Path) -> None:
    """Import what the children import once, so that the first measured child does not
    compile it."""
    env = _child_env(work)
    imports = "import spark_loaders.ingest.api, spark_loaders.spark_session, pyspark.sql"
    subprocess.run([sys.executable, "-c", imports], env=env, cwd=PROJECT, check=True)


def run_child(kind: str, path: Path, db_url: str, spark_dir: Path) -> dict:
    env = _child_env(spark_dir.parent)
    env.update(CONDO_DATABASE_URL=db_url, CONDO_SPARK_DIR=str(spark_dir))
    env.setdefault("CONDO_SPARK_MASTER", "local[2]")
    if kind == "condo-spark":
        env["CONDO_LOAD_VECTORISED"] = "0"
    env.setdefault("PYSPARK_PYTHON", sys.executable)
    started = time.monotonic()
    process = subprocess.Popen(
        [sys.executable, __file__, "--child", kind, str(path)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    peak = 0
    cpu = 0.0
    stop = threading.Event()

    def sample() -> None:
        nonlocal peak, cpu
        while not stop.is_set():
            rss, seconds = _tree_usage(process.pid)
            peak, cpu = max(peak, rss), max(cpu, seconds)
            stop.wait(0.2)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    out, _ = process.communicate()
    wall = time.monotonic() - started
    stop.set()
    sampler.join()
    if process.returncode != 0:
        raise SystemExit(f"{kind} run failed (exit {process.returncode})")
    result = json.loads(out.strip().splitlines()[-1])
    result.update(wall=wall, peak_mb=peak / 2**20, cpu=cpu)
    return result


def raw_copy(conninfo: dict, path: Path) -> float:
    import psycopg

    with psycopg.connect(**conninfo, autocommit=True) as conn:
        conn.execute(
            "create table raw_transacoes (imovel_id integer not null, morador_id integer not null,"
            " data_transacao date not null, valor_transacao numeric(15,2) not null)"
        )
        started = time.monotonic()
        with (
            conn.cursor().copy("copy raw_transacoes from stdin (format csv, header true)") as copy,
            path.open("rb") as source,
        ):
            while chunk := source.read(1 << 20):
                copy.write(chunk)
        return time.monotonic() - started


def pgloader_load(db, path: Path, work: Path) -> dict:
    """Run pgloader on the file into a new typed table; wall time, CPU of the process."""
    import resource
    import shutil

    if shutil.which("pgloader") is None:
        raise SystemExit(
            "pgloader is not installed (apt-get install pgloader), or use --skip-pgloader"
        )
    work.mkdir(parents=True, exist_ok=True)
    command = work / "transacoes.load"
    command.write_text(
        f"""LOAD CSV
  FROM '{path}' (imovel_id, morador_id, data_transacao, valor_transacao)
  INTO postgresql://{db.user}@{db.host}:{db.port}/{db.dbname}
  TARGET TABLE pgl_transacoes
  WITH skip header = 1, fields terminated by ',', fields optionally enclosed by '"'
  BEFORE LOAD DO $$ create table pgl_transacoes (imovel_id integer not null,
    morador_id integer not null, data_transacao date not null,
    valor_transacao numeric(15,2) not null); $$;
"""
    )
    env = {**os.environ, "PGPASSWORD": db.password or ""}  # not written to the command file
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.monotonic()
    done = subprocess.run(
        ["pgloader", "--root-dir", str(work / "root"), str(command)],
        env=env,
        capture_output=True,
        text=True,
    )
    seconds = time.monotonic() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if done.returncode != 0:
        raise SystemExit(f"pgloader failed: {(done.stdout + done.stderr)[-2000:]}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    import psycopg

    with psycopg.connect(**db.psycopg_kwargs()) as conn:
        loaded = conn.execute("select count(*) from pgl_transacoes").fetchone()[0]
    return {
        "wall": seconds,
        "work": seconds,
        "startup": 0.0,
        "peak_mb": None,
        "cpu": cpu,
        "rows_loaded": loaded,
    }


# -- main ---------------------------------------------------------------------------------


def main() -> int:  # noqa: C901 - being reworked with the loader fast path; split it there
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=1_000_000, help="transactions (default 1M)")
    parser.add_argument(
        "--work-dir",
        type=Path,
        default=Path("/tmp/condo-bench-load"),
        help="where the generated files are cached",
    )
    parser.add_argument("--skip-naive", action="store_true", help="do not run the naive JDBC load")
    parser.add_argument("--skip-pgloader", action="store_true", help="do not run pgloader")
    parser.add_argument(
        "--skip-spark-path",
        action="store_true",
        help="do not run the load with the vectorised path off (the before/after ratio)",
    )
    parser.add_argument(
        "--skip-noidx",
        action="store_true",
        help="do not run the load without bronze indexes (the with/without ratio)",
    )
    parser.add_argument(
        "--repeat",
        type=int,
        default=1,
        help="runs of each Spark variant, in alternating order; the median is reported",
    )
    parser.add_argument("--child", nargs=2, metavar=("KIND", "PATH"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(*args.child)
        return 0

    import psycopg

    from spark_loaders import connection
    from spark_loaders.generator.core import generate

    data = args.work_dir / f"n{args.rows}"
    path = data / "transacoes.csv"
    if not path.is_file():
        print(f"generating {args.rows:,} transactions into {data} ...", flush=True)
        generate(data, args.rows)
    size_mb = path.stat().st_size / 1e6
    print(f"file: {path} ({size_mb:,.0f} MB, {args.rows:,} rows)", flush=True)

    server = connection.resolve()
    admin = server.psycopg_kwargs()
    results: dict[str, dict] = {}
    databases = []

    def fresh() -> connection.ConnectionInfo:
        name = f"bench_{uuid.uuid4().hex[:8]}"
        with psycopg.connect(**admin, autocommit=True) as conn:
            conn.execute(f'create database "{name}"')
        databases.append(name)
        return connection.ConnectionInfo(
            server.host, server.port, server.user, server.password, name, "url"
        )

    def drop(name: str) -> None:
        with psycopg.connect(**admin, autocommit=True) as conn:
            conn.execute(f'drop database if exists "{name}" with (force)')

    try:
        copies: list[float] = []

        def baseline() -> None:
            """The raw COPY, once per attempt: the median stands (the machine is noisy)."""
            db = fresh()
            seconds = raw_copy(db.psycopg_kwargs(), path)
            drop(db.dbname)
            copies.append(seconds)
            median = sorted(copies)[(len(copies) - 1) // 2]
            results["copy"] = {
                "wall": median,
                "work": median,
                "startup": 0.0,
                "peak_mb": None,
                "cpu": None,
            }
            print(f"copy : {seconds:6.1f}s  {args.rows / seconds:>12,.0f} rows/s", flush=True)

        warm_bytecode_cache(data)
        baseline()
        if not args.skip_pgloader:
            db = fresh()
            results["pgloader"] = pgloader_load(db, path, data / "pgloader")
            seconds = results["pgloader"]["wall"]
            print(
                f"pgloader: {seconds:6.1f}s  {args.rows / seconds:>12,.0f} rows/s, "
                f"{results['pgloader']['rows_loaded']:,} rows loaded",
                flush=True,
            )
            drop(db.dbname)
        kinds = ["condo", "condo-spark", "condo-noidx", "naive"]
        if args.skip_spark_path:
            kinds.remove("condo-spark")
        if args.skip_noidx:
            kinds.remove("condo-noidx")
        if args.skip_naive:
            kinds.remove("naive")
        runs: dict[str, list[dict]] = {kind: [] for kind in kinds}
        for attempt in range(args.repeat):
            if attempt:
                baseline()
            # Alternate the order so that neither variant always runs first.
            for kind in kinds if attempt % 2 == 0 else kinds[::-1]:
                db = fresh()
                r = run_child(kind, path, db.url(), data / f"spark-{kind}")
                runs[kind].append(r)
                print(
                    f"{kind:11}: {r['wall']:6.1f}s end to end, {r['work']:6.1f}s without "
                    f"start-up ({r['startup']:.1f}s), peak {r['peak_mb']:,.0f} MB, "
                    f"{r['cpu']:.0f} CPU-s",
                    flush=True,
                )
                drop(db.dbname)
        for kind in kinds:  # the median run (by time without start-up) stands for the kind
            ordered = sorted(runs[kind], key=lambda r: r["work"])
            results[kind] = ordered[(len(ordered) - 1) // 2]
    finally:
        with psycopg.connect(**admin, autocommit=True) as conn:
            for name in databases:
                conn.execute(f'drop database if exists "{name}" with (force)')

    n = args.rows
    print()
    print(
        f"| N = {n:,} | end to end s | rows/s | without Spark start-up s | rows/s "
        "| peak RSS MB | client CPU-s |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|")
    for kind, r in results.items():
        peak = f"{r['peak_mb']:,.0f}" if r["peak_mb"] else "-"
        cpu = f"{r['cpu']:.0f}" if r["cpu"] else "-"
        print(
            f"| {kind} | {r['wall']:.1f} | {n / r['wall']:,.0f} | {r['work']:.1f} | "
            f"{n / r['work']:,.0f} | {peak} | {cpu} |"
        )
    copy = results["copy"]["work"]
    condo = results["condo"]
    print()
    print(f"condo / raw COPY throughput, without start-up: {copy / condo['work']:.2f}")
    print(f"condo / raw COPY throughput, end to end:       {copy / condo['wall']:.2f}")
    steps = condo.get("timings", {})
    if steps:
        print(
            "bronze index steps: btree prebuilt {:.2f}s, BRIN + ANALYZE in the final transaction "
            "{:.2f}s; final transaction's publishing step {:.2f}s in all".format(
                steps.get("prebuild_indexes", 0.0),
                steps.get("prepare_attach", 0.0),
                steps.get("publish_bulk", 0.0),
            )
        )
    if steps:
        print(
            "loader steps: pre-scan {:.2f}s, parse + check + COPY {:.2f}s, btree {:.2f}s with "
            "the re-check of the bytes ({:.2f}s) beside it".format(
                steps.get("prescan", 0.0),
                steps.get("write_bulk", 0.0) + steps.get("write_bulk_vectorised", 0.0),
                steps.get("prebuild_indexes_while", 0.0),
                steps.get("verify_unchanged", 0.0),
            )
        )
    if "condo-spark" in results:
        before = results["condo-spark"]
        print(
            f"vectorised / Spark path, without start-up:     {before['work'] / condo['work']:.2f}x "
            f"faster ({before['cpu']:.0f} vs {condo['cpu']:.0f} client CPU-s)"
        )
        print(f"Spark path / raw COPY throughput, without start-up: {copy / before['work']:.2f}")
    if "condo-noidx" in results:
        plain = results["condo-noidx"]
        print(
            f"condo with / without bronze indexes, without start-up: "
            f"{condo['work'] / plain['work']:.2f} ({condo['work'] - plain['work']:+.1f}s); "
            f"final transaction's publishing step {steps.get('publish_bulk', 0.0):.2f}s vs "
            f"{plain.get('timings', {}).get('publish_bulk', 0.0):.2f}s"
        )
    if "naive" in results:
        naive = results["naive"]
        print(
            f"speed-up over naive, end to end:               {naive['wall'] / condo['wall']:.2f}x"
        )
        print(
            f"speed-up over naive, without start-up:         {naive['work'] / condo['work']:.2f}x"
        )
    if "pgloader" in results:
        print(
            f"speed-up over pgloader, end to end:            "
            f"{results['pgloader']['wall'] / condo['wall']:.2f}x"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
