"""What the bronze indexes buy the incremental readers, against the same table without them.

Builds, in a scratch database, a table shaped like ``bronze.transacoes`` (LIST-partitioned by
``_load_id``, a default partition) holding ``--rows`` rows spread over P load partitions
(each load with its own ``_loaded_at``, ids mostly unique), for each P in ``--partitions``.
Then, best of three, without and then with the loader's indexes (``ddl.BRONZE_INDEXES``,
created the way ``ensure_schema`` creates them, then ANALYZE):

* "rows loaded since T" when nothing is new, and when only the last load is new;
* "every version of these ids": a join of bronze with K ids, for each K in ``--ids``.

It prints each time and the ratio without / with the indexes.

    .venv/bin/python bench/bench_bronze_indexes.py --rows 10000000 --partitions 1 10 100
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

PROJECT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(PROJECT))
sys.path.insert(0, str(PROJECT / "tests" / "python"))

ENTITY = "transacoes"


def build(conn, rows: int, partitions: int) -> None:
    per = rows // partitions
    from spark_loaders.domain import BY_NAME, LINEAGE_COLUMNS, PARTITION_COLUMN

    columns = ", ".join(
        f"{c.name} {c.pg_type} not null" for c in (*BY_NAME[ENTITY].columns, *LINEAGE_COLUMNS)
    )
    conn.execute(
        f"create schema bronze; create table bronze.{ENTITY} ({columns}) "
        f"partition by list ({PARTITION_COLUMN})"
    )
    conn.execute(f"create table bronze.{ENTITY}_default partition of bronze.{ENTITY} default")
    for load in range(1, partitions + 1):
        table = f"bronze.{ENTITY}_l{load}"
        conn.execute(f"create table {table} (like bronze.{ENTITY})")
        conn.execute(
            f"insert into {table} select g + {(load - 1) * per}, g % 5000 + 1, g % 7000 + 1, "
            "date '2024-01-01' + (g % 365), (g % 90000 + 10) / 100.0, 'transacoes.csv', g + 1, "
            f"{load}, timestamptz '2026-01-01' + interval '1 hour' * {load}, false "
            f"from generate_series(1, {per}) g"
        )
        conn.execute(f"alter table bronze.{ENTITY} attach partition {table} for values in ({load})")
    conn.execute(f"analyze bronze.{ENTITY}")


def best_of(conn, sql: str, params: tuple = (), tries: int = 3) -> float:
    best = float("inf")
    for _ in range(tries):
        started = time.monotonic()
        conn.execute(sql, params).fetchall()
        best = min(best, time.monotonic() - started)
    return best


def queries(rows: int, partitions: int, id_counts: list[int]) -> dict[str, tuple[str, tuple]]:
    last = f"timestamptz '2026-01-01' + interval '1 hour' * {partitions}"
    found: dict[str, tuple[str, tuple]] = {
        "loaded since T, nothing new": (
            f"select count(*) from bronze.{ENTITY} where _loaded_at > {last}",
            (),
        ),
        "loaded since T, last load new": (
            f"select count(*) from bronze.{ENTITY} where _loaded_at > {last} - interval '1 minute'",
            (),
        ),
    }
    for k in id_counts:
        ids = list(range(1, rows + 1, max(1, rows // k)))[:k]
        found[f"versions of {k:,} ids"] = (
            f"select b.transacao_id, max(b._load_id) from bronze.{ENTITY} b "
            "join unnest(%s::int[]) as i(id) on i.id = b.transacao_id group by 1",
            (ids,),
        )
    return found


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=10_000_000, help="bronze rows (default 10M)")
    parser.add_argument(
        "--partitions", type=int, nargs="+", default=[1, 10, 100], help="load partitions"
    )
    parser.add_argument(
        "--ids", type=int, nargs="+", default=[1_000, 100_000], help="ids per lookup"
    )
    args = parser.parse_args()

    import psycopg
    from pg_helpers import scratch_database

    from spark_loaders import connection
    from spark_loaders.domain import BY_NAME
    from spark_loaders.ingest.ddl import bronze_index_ddl

    server = connection.resolve()
    print("| partitions | query | no index ms | with indexes ms | ratio |")
    print("|---:|---|---:|---:|---:|")
    for partitions in args.partitions:
        with (
            scratch_database(server, "bench_idx") as db,
            psycopg.connect(**db.psycopg_kwargs(), autocommit=True) as conn,
        ):
            build(conn, args.rows, partitions)
            work = queries(args.rows, partitions, args.ids)
            without = {name: best_of(conn, sql, params) for name, (sql, params) in work.items()}
            started = time.monotonic()
            for statement in bronze_index_ddl(BY_NAME[ENTITY]):
                conn.execute(statement)
            conn.execute(f"analyze bronze.{ENTITY}")
            built = time.monotonic() - started
            for name, (sql, params) in work.items():
                with_indexes = best_of(conn, sql, params)
                print(
                    f"| {partitions} | {name} | {without[name] * 1000:,.1f} | "
                    f"{with_indexes * 1000:,.1f} | {without[name] / with_indexes:,.1f}x |",
                    flush=True,
                )
            print(
                f"| {partitions} | (index build + ANALYZE on {args.rows:,} rows) | | "
                f"{built * 1000:,.0f} | |",
                flush=True,
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
