"""Benchmark: rejecting a file with an unclosed quote versus loading the same file closed.

A transactions file of N lines is written twice: once with line 2's first field quoted and
closed (``"1",1,...``: a valid row), once with the quote never closed (``"1,1,...``). Each is
loaded with ``ingest_files`` (what ``condo load`` runs) into its own fresh database on the
resolved server, in one process and one SparkSession, after a warm-up load. The unclosed
file must be rejected whole, naming line 2; the issue's bound is reject <= 2x load.

    .venv/bin/python bench/bench_unclosed_quote.py --lines 1000000
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
import uuid
from pathlib import Path

PROJECT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(PROJECT))

HEADER = "imovel_id,morador_id,data_transacao,valor_transacao\n"


def write(path: Path, lines: int, *, closed: bool) -> Path:
    second = '"1",1,2024-03-01,10.00\n' if closed else '"1,1,2024-03-01,10.00\n'
    with path.open("w", encoding="utf-8") as out:
        out.write(HEADER)
        out.write(second)
        block = []
        for n in range(3, lines + 1):
            block.append(
                f"{n % 97 + 1},{n % 89 + 1},2024-03-{n % 28 + 1:02d},{n % 5000}.{n % 100:02d}\n"
            )
            if len(block) == 100_000:
                out.writelines(block)
                block = []
        out.writelines(block)
    return path


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lines", type=int, default=1_000_000)
    args = parser.parse_args()

    import os

    import psycopg

    from spark_loaders import connection
    from spark_loaders.ingest.api import ingest_files
    from spark_loaders.spark_session import get_spark

    server = connection.resolve()
    admin = server.psycopg_kwargs()
    work = Path(tempfile.mkdtemp(prefix="bench-quote-"))
    closed = write(work / "transacoes_closed.csv", args.lines, closed=True)
    unclosed = write(work / "transacoes_unclosed.csv", args.lines, closed=False)
    size_mb = closed.stat().st_size / 1e6
    print(f"{args.lines:,} lines, {size_mb:,.1f} MB per file", flush=True)
    spark = get_spark("bench-unclosed-quote")
    databases: list[str] = []

    def timed_load(path: Path) -> tuple[float, str, str | None]:
        name = f"bench_{uuid.uuid4().hex[:8]}"
        with psycopg.connect(**admin, autocommit=True) as conn:
            conn.execute(f'create database "{name}"')
        databases.append(name)
        db = connection.ConnectionInfo(
            server.host, server.port, server.user, server.password, name, "url"
        )
        os.environ["CONDO_DATABASE_URL"] = db.url()
        started = time.monotonic()
        report = ingest_files(spark, [path], progress=False)
        seconds = time.monotonic() - started
        result = report.files[0]
        return seconds, result.status, result.error

    try:
        timed_load(write(work / "transacoes_warmup.csv", 1000, closed=True))
        load_s, load_status, _ = timed_load(closed)
        reject_s, reject_status, error = timed_load(unclosed)
    finally:
        with psycopg.connect(**admin, autocommit=True) as conn:
            for name in databases:
                conn.execute(f'drop database if exists "{name}" with (force)')
        spark.stop()
        for path in work.iterdir():
            path.unlink()
        work.rmdir()
    assert load_status == "loaded", load_status
    assert reject_status == "rejected" and "line 2" in (error or ""), (reject_status, error)
    print(f"load (quote closed):    {load_s:8.2f} s  ({args.lines / load_s:,.0f} lines/s)")
    print(f"reject (quote unclosed): {reject_s:7.2f} s  -> {error}")
    print(f"ratio reject/load: {reject_s / load_s:.2f} (bound: 2.00)")
    return 0 if reject_s <= 2 * load_s else 1


if __name__ == "__main__":
    sys.exit(main())
