"""Benchmark bronze compaction: dbt's incremental run after +1% against a full refresh, with
bronze in many load partitions and then compacted, in the same run on the same database.

Bronze: the dimensions as one bulk load each, then ``--loads`` transaction loads of
``--rows-per-load`` rows (default 200 x 50,000 = 10M), each a partition made through the
loader's own publishing code (``tests/python/synthetic_loads.py``: staging table with its
CHECK, prebuilt btree, ``_loaded_at``, BRIN, ANALYZE, ATTACH, ledger entry), so partitions,
indexes, statistics and ledger are those ``condo load`` leaves; only CSV parsing is skipped.

Steps: full refresh (baseline) -> +1% as a new load -> incremental (uncompacted, measured)
-> ``compact_entity`` on every table (measured) -> +1% again -> incremental (compacted,
measured) -> fingerprint -> full refresh again -> fingerprints must match. Ratios use the
faster of the two full refreshes.

    .venv/bin/python bench/bench_compact.py --loads 200 --rows-per-load 50000
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import psycopg

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))
sys.path.insert(0, str(ROOT / "tests" / "python"))

from bench_dbt import (  # noqa: E402
    BUILD,
    TYPES,
    fingerprint,
    model_times,
    run_dbt,
    scratch_database,
)
from synthetic_loads import bulk_load, transactions_sql  # noqa: E402

from spark_loaders import connection  # noqa: E402
from spark_loaders.domain import ENTITY_ORDER  # noqa: E402
from spark_loaders.ingest import compact  # noqa: E402
from spark_loaders.ingest.ddl import ensure_schema  # noqa: E402

DAYS = 1826
# The loads are made minutes before the first dbt run. With the project's default lookback
# (10 minutes before the previous run's start) the first incremental run would re-read all of
# them, as if they had just arrived; in production they are days old. So every run here uses
# no lookback (nothing loads concurrently with dbt in this benchmark).
NO_LOOKBACK = ["--vars", "{incremental_lookback_minutes: 0}"]


def dimension_sql(n: int) -> dict[str, str]:
    condos = max(10, n // 10_000)
    units = max(100, n // 20)
    people = max(100, n // 20)
    return {
        "condominios": f"""select i::int, 'Condominio ' || i, 'Rua ' || i || ', ' || i || ', Centro', i + 1
            from generate_series(1::bigint, {condos}) as i""",
        "imoveis": f"""select i::int, ({TYPES})[1 + i % 8],
                (case when i % 1000 = 0 then {condos} + 1 else 1 + (i * 7919) % {condos} end)::int,
                (100000 + (i * 37) % 900000)::numeric(15,2), i + 1
            from generate_series(1::bigint, {units}) as i""",
        "moradores": f"""select i::int, 'Morador ' || (i % 5000), (1 + (i * 104729) % {condos})::int,
                date '2020-01-01' + (i % {DAYS})::int, i + 1
            from generate_series(1::bigint, {people}) as i""",
    }


def partition_count(conn: psycopg.Connection) -> int:
    return conn.execute(
        "select count(*) from pg_inherits where inhparent = 'bronze.transacoes'::regclass"
    ).fetchone()[0]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--loads", type=int, default=200)
    parser.add_argument("--rows-per-load", type=int, default=50_000)
    parser.add_argument("--workdir", type=Path, default=ROOT / ".condo" / "bench_compact")
    parser.add_argument("--keep", action="store_true", help="keep the benchmark database")
    parser.add_argument("--json", type=Path, help="also write the results to this file")
    args = parser.parse_args()

    n = args.loads * args.rows_per_load
    extra = max(1, n // 100)
    units, people = max(100, n // 20), max(100, n // 20)
    out: dict = {"loads": args.loads, "rows_per_load": args.rows_per_load, "transactions": n}
    database = scratch_database(connection.resolve(), f"bench_compact_{n}", keep=args.keep)
    with database as (info, env), psycopg.connect(**info.psycopg_kwargs(), autocommit=True) as conn:
        start = time.perf_counter()
        ensure_schema(conn)
        for entity, sql in dimension_sql(n).items():
            bulk_load(conn, entity, sql, source_file=f"{entity}.csv")
        for k in range(args.loads):
            bulk_load(
                conn,
                "transacoes",
                transactions_sql(
                    1 + k * args.rows_per_load, args.rows_per_load, units=units, people=people
                ),
                source_file=f"transacoes_{k:04d}.csv",
            )
        out["generate_s"] = round(time.perf_counter() - start, 1)
        print(f"bronze: {args.loads} loads of {args.rows_per_load:,} in {out['generate_s']}s")

        run_dbt(["parse"], env, args.workdir)
        full, full_run = run_dbt([*BUILD, *NO_LOOKBACK, "--full-refresh"], env, args.workdir)
        print(f"full refresh: {full:.1f}s (run {full_run:.1f}s)", flush=True)

        def append(first: int, name: str) -> None:
            # New ids dated in the last 30 days, as bench_dbt.py's default "recent".
            sql = transactions_sql(first, extra, units=units, people=people, recent=True)
            bulk_load(conn, "transacoes", sql, source_file=name)

        def incremental(label: str) -> tuple[float, float]:
            """The measured incremental run, with the partitions it read and per-model times."""
            out[f"partitions_{label}"] = partition_count(conn)
            wall, run = run_dbt([*BUILD, *NO_LOOKBACK], env, args.workdir)
            out[f"model_s_{label}"] = model_times(args.workdir)
            print(
                f"incremental after +1%, {out[f'partitions_{label}']} partitions: "
                f"{wall:.1f}s (run {run:.1f}s)",
                flush=True,
            )
            return wall, run

        append(n + 1, "transacoes_novas_1.csv")
        unc, unc_run = incremental("uncompacted")

        start = time.perf_counter()
        results = [
            compact.compact_entity(info.psycopg_kwargs(), e, compact.Options(older_than_days=0))
            for e in ENTITY_ORDER
        ]
        out["compact_s"] = round(time.perf_counter() - start, 1)
        tx = results[-1]
        out["compact_transacoes"] = {
            "status": tx.status,
            "partitions": len(tx.sources),
            "rows": tx.rows,
            "build_s": round(tx.build_seconds, 2),
            "lock_s": round(tx.lock_seconds, 3),
        }
        print(f"compaction: {out['compact_s']}s; {compact.describe(tx)}", flush=True)

        append(n + extra + 1, "transacoes_novas_2.csv")
        com, com_run = incremental("compacted")
        after_incremental = fingerprint(conn)
        full2, full2_run = run_dbt([*BUILD, *NO_LOOKBACK, "--full-refresh"], env, args.workdir)
        print(f"full refresh (check): {full2:.1f}s (run {full2_run:.1f}s)", flush=True)
        identical = fingerprint(conn) == after_incremental
    base, base_run = min(full, full2), min(full_run, full2_run)
    out.update(
        {
            "full_refresh_s": [round(full, 1), round(full2, 1)],
            "full_refresh_run_s": [round(full_run, 1), round(full2_run, 1)],
            "incremental_uncompacted_s": round(unc, 1),
            "incremental_uncompacted_run_s": round(unc_run, 1),
            "incremental_compacted_s": round(com, 1),
            "incremental_compacted_run_s": round(com_run, 1),
            "ratio_uncompacted_run": round(unc_run / base_run, 3),
            "ratio_compacted_run": round(com_run / base_run, 3),
            "ratio_uncompacted_wall": round(unc / base, 3),
            "ratio_compacted_wall": round(com / base, 3),
            "incremental_equals_full_refresh": identical,
            "load_average": os.getloadavg(),
        }
    )
    print(json.dumps(out, indent=2))
    if args.json:
        args.json.write_text(json.dumps(out, indent=2))
    return 0 if identical else 1


if __name__ == "__main__":
    sys.exit(main())
