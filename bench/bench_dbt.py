"""Benchmark ``dbt build`` on the postgres target: full refresh against an incremental run
after appending 1% new transactions, at 1M and 10M transactions.

Bronze is generated directly in PostgreSQL with ``generate_series`` into the loader's own
bronze tables (``spark_loaders.ingest.ddl``: partitioned by load, one partition per load,
BRIN on ``_loaded_at`` and btree on the id), deterministically, with 0.5% of transactions re-loaded by a second
load (so deduplication has work to do) and 0.1% of properties pointing to an unknown
condominium (so the orphan cascade does too). The 1% appended transactions get new ids and
dates in the last 30 days (``--new-dates spread``: over the whole range, the worst case for
the daily model, where every day changes).

Every size runs: full refresh (the baseline) -> append 1% -> incremental build (measured)
-> fingerprint of every silver and gold table -> full refresh again -> the fingerprints
must match, so the measured incremental run is also checked for correctness.

    .venv/bin/python bench/bench_dbt.py --sizes 1000000 10000000
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import psycopg

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from spark_loaders import connection  # noqa: E402
from spark_loaders.dbt_env import dbt_environment  # noqa: E402
from spark_loaders.ingest import ddl  # noqa: E402

BUILD = ["build", "--exclude-resource-type", "test", "--exclude-resource-type", "unit_test"]
TABLES = (
    "silver.condominios",
    "silver.imoveis",
    "silver.moradores",
    "silver.transacoes",
    "silver.int_transacoes_por_imovel",
    "gold.transacoes_por_condominio",
    "gold.transacoes_por_morador",
    "gold.transacoes_diarias_por_tipo_imovel",
)
DAYS = 1826  # five years of transaction dates

# Bulk loads of the generated bronze: (entity, load id). Every load gets its own partition of
# the loader's partitioned bronze table, as `condo load` does.
LOADS = (("condominios", 1), ("imoveis", 1), ("moradores", 1), ("transacoes", 1), ("transacoes", 2))
APPEND_LOAD = ("transacoes", 3)


def create_bronze(conn: psycopg.Connection) -> None:
    """The loader's own bronze DDL (partitioned by load, BRIN on `_loaded_at`, btree on the
    id) and one partition per generated load."""
    ddl.ensure_schema(conn)
    for entity, load_id in LOADS:
        add_partition(conn, entity, load_id)


def add_partition(conn: psycopg.Connection, entity: str, load_id: int) -> None:
    conn.execute(
        f"create table {ddl.LOADS_SCHEMA}.bench_{entity}_{load_id} "
        f"partition of bronze.{entity} for values in ({load_id})"
    )


def index_like_the_loader(conn: psycopg.Connection, entity: str, load_id: int) -> None:
    """Rebuild a filled partition's indexes in one pass, as `condo load` builds them: its
    btree and BRIN are created on the load's finished table (`prebuild_indexes`,
    `prepare_attach`), never grown row by row. A BRIN on `_loaded_at` grown by the inserts
    above leaves most of its page ranges matching any cutoff (measured: 65% of a 10M-row
    partition's pages read for "loaded in the last 10 minutes", 1.0-1.5 s instead of
    0.03 s), which the loader's bronze never has."""
    conn.execute(f"reindex table {ddl.LOADS_SCHEMA}.bench_{entity}_{load_id}")


TYPES = (
    "array['Apartamento','casa ','Cobertura','Duplex','Kitnet','Loja','Sala  Comercial','Terreno']"
)


def generate_sql(n: int) -> list[str]:
    condos = max(10, n // 10_000)
    units = max(100, n // 20)
    people = max(100, n // 20)
    base = "now() - interval '1 day'"
    return [
        f"""insert into bronze.condominios
            select i, 'Condominio ' || i, 'Rua ' || i || ', ' || i || ', Centro',
                   'condominios.csv', i + 1, 1, {base}, true
            from generate_series(1::bigint, {condos}) as i""",
        f"""insert into bronze.imoveis
            select i, ({TYPES})[1 + i % 8],
                   case when i % 1000 = 0 then {condos} + 1 else 1 + (i * 7919) % {condos} end,
                   (100000 + (i * 37) % 900000)::numeric(15,2),
                   'imoveis.csv', i + 1, 1, {base}, false
            from generate_series(1::bigint, {units}) as i""",
        f"""insert into bronze.moradores
            select i, 'Morador ' || (i % 5000), 1 + (i * 104729) % {condos},
                   date '2020-01-01' + (i % {DAYS})::int,
                   'moradores.csv', i + 1, 1, {base}, false
            from generate_series(1::bigint, {people}) as i""",
        f"""insert into bronze.transacoes
            select i, 1 + (i * 2654435761) % {units}, 1 + (i * 40503) % {people},
                   date '2020-01-01' + ((i * 7) % {DAYS})::int,
                   ((i * 7919) % 100000000 / 100.0)::numeric(15,2),
                   'transacoes.csv', i + 1, 1, {base}, false
            from generate_series(1::bigint, {n}) as i""",
        # A second load re-sends 0.5% of the transactions with a new value.
        f"""insert into bronze.transacoes
            select i, 1 + (i * 2654435761) % {units}, 1 + (i * 40503) % {people},
                   date '2020-01-01' + ((i * 7) % {DAYS})::int,
                   ((i * 7919) % 100000000 / 100.0 + 1)::numeric(15,2),
                   'transacoes_fix.csv', i / 200 + 1, 2, {base} + interval '1 minute', false
            from generate_series(200::bigint, {n}, 200) as i""",
    ]


def append_sql(n: int, new_dates: str) -> str:
    extra = max(1, n // 100)
    # "recent": the new transactions fall in the last 30 days of the range, as appended data
    # normally does; "spread": over all five years, the worst case for the daily model.
    day = f"{DAYS - 30} + (i * 13) % 30" if new_dates == "recent" else f"(i * 13) % {DAYS}"
    units = max(100, n // 20)
    people = max(100, n // 20)
    return f"""insert into bronze.transacoes
        select i, 1 + (i * 2654435761) % {units}, 1 + (i * 40503) % {people},
               date '2020-01-01' + ({day})::int,
               ((i * 7919) % 100000000 / 100.0)::numeric(15,2),
               'transacoes_novas.csv', i - {n} + 1, 3, now(), false
        from generate_series({n}::bigint + 1, {n} + {extra}) as i"""


def fingerprint(conn: psycopg.Connection) -> dict[str, str]:
    """An order-independent digest of every table's rows."""
    out = {}
    for table in TABLES:
        row = conn.execute(
            f"select count(*), coalesce(sum(('x' || substr(md5(t::text), 1, 15))::bit(60)::bigint"
            f"::numeric), 0) from {table} as t"
        ).fetchone()
        out[table] = f"{row[0]}:{row[1]}"
    return out


def run_dbt(args: list[str], env: dict[str, str], workdir: Path) -> tuple[float, float]:
    """Wall time of the dbt process and dbt's own elapsed time (the run, without start-up
    and parsing)."""
    cmd = [
        str(Path(sys.executable).with_name("dbt")),
        *args,
        "--target",
        "postgres",
        "--project-dir",
        str(ROOT),
        "--profiles-dir",
        str(ROOT / "profiles"),
        "--target-path",
        str(workdir / "target"),
        "--log-path",
        str(workdir / "logs"),
    ]
    start = time.perf_counter()
    result = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True)
    elapsed = time.perf_counter() - start
    if result.returncode != 0:
        sys.stderr.write(result.stdout[-5000:] + result.stderr[-3000:])
        raise SystemExit(f"dbt {' '.join(args)} failed")
    run_results = workdir / "target" / "run_results.json"
    inner = json.loads(run_results.read_text())["elapsed_time"] if run_results.exists() else 0
    return elapsed, inner


def model_times(workdir: Path) -> dict[str, float]:
    """Seconds per node of the last dbt run, slowest first."""
    results = json.loads((workdir / "target" / "run_results.json").read_text())["results"]
    times = {r["unique_id"].split(".")[-1]: round(r["execution_time"], 2) for r in results}
    return dict(sorted(times.items(), key=lambda item: -item[1]))


@contextlib.contextmanager
def scratch_database(
    admin: connection.ConnectionInfo, dbname: str, *, keep: bool
) -> Iterator[tuple[connection.ConnectionInfo, dict[str, str]]]:
    """A fresh database ``dbname`` on ``admin``'s server (an old one of that name is dropped
    first) and dbt's environment pointed at it; dropped again afterwards unless ``keep``."""
    with psycopg.connect(**admin.psycopg_kwargs(), autocommit=True) as conn:
        conn.execute(f'drop database if exists "{dbname}" with (force)')
        conn.execute(f'create database "{dbname}"')
    info = dataclasses.replace(admin, dbname=dbname, source="url")
    os.environ["CONDO_DATABASE_URL"] = info.url()
    env = dbt_environment("postgres")
    env["DBT_SEND_ANONYMOUS_USAGE_STATS"] = "false"
    try:
        yield info, env
    finally:
        os.environ.pop("CONDO_DATABASE_URL", None)
        if not keep:
            with psycopg.connect(**admin.psycopg_kwargs(), autocommit=True) as conn:
                conn.execute(f'drop database if exists "{dbname}" with (force)')


def bench_size(
    n: int, admin: connection.ConnectionInfo, workdir: Path, keep: bool, new_dates: str
) -> dict:
    with (
        scratch_database(admin, f"bench_dbt_{n}", keep=keep) as (info, env),
        psycopg.connect(**info.psycopg_kwargs(), autocommit=True) as conn,
    ):
        start = time.perf_counter()
        create_bronze(conn)
        for statement in generate_sql(n):
            conn.execute(statement)
        for entity, load_id in LOADS:
            index_like_the_loader(conn, entity, load_id)
        conn.execute("analyze")
        generated = time.perf_counter() - start
        print(f"[{n:,}] bronze generated in {generated:.1f}s", flush=True)

        run_dbt(["parse"], env, workdir)  # so both timed runs start from the same parse state
        full, full_run = run_dbt([*BUILD, "--full-refresh"], env, workdir)
        print(f"[{n:,}] full refresh: {full:.1f}s (run {full_run:.1f}s)", flush=True)
        noop, noop_run = run_dbt(BUILD, env, workdir)
        print(f"[{n:,}] incremental, no new data: {noop:.1f}s (run {noop_run:.1f}s)", flush=True)

        add_partition(conn, *APPEND_LOAD)
        conn.execute(append_sql(n, new_dates))
        index_like_the_loader(conn, *APPEND_LOAD)
        conn.execute("analyze bronze.transacoes")
        incremental, incremental_run = run_dbt(BUILD, env, workdir)
        print(
            f"[{n:,}] incremental after +1%: {incremental:.1f}s (run {incremental_run:.1f}s)",
            flush=True,
        )
        after_incremental = fingerprint(conn)
        per_model = model_times(workdir)
        print(f"[{n:,}] per model: {per_model}", flush=True)

        full_again, full_again_run = run_dbt([*BUILD, "--full-refresh"], env, workdir)
        print(
            f"[{n:,}] full refresh (check): {full_again:.1f}s (run {full_again_run:.1f}s)",
            flush=True,
        )
        after_full = fingerprint(conn)
        identical = after_full == after_incremental
        for table in TABLES:
            if after_full[table] != after_incremental[table]:
                print(
                    f"[{n:,}] MISMATCH {table}: incremental {after_incremental[table]} "
                    f"!= full refresh {after_full[table]}",
                    flush=True,
                )
        silver_rows = conn.execute("select count(*) from silver.transacoes").fetchone()[0]
    return {
        "transactions": n,
        "new_dates": new_dates,
        "silver_transactions": silver_rows,
        "generate_s": round(generated, 1),
        "full_refresh_s": round(full, 1),
        "incremental_noop_s": round(noop, 1),
        "incremental_plus_1pct_s": round(incremental, 1),
        "full_refresh_check_s": round(full_again, 1),
        "full_refresh_run_s": round(full_run, 1),
        "incremental_noop_run_s": round(noop_run, 1),
        "incremental_plus_1pct_run_s": round(incremental_run, 1),
        "full_refresh_check_run_s": round(full_again_run, 1),
        # The baseline is the faster of the two full refreshes of the same run: on a noisy
        # machine this keeps a slowed-down baseline from flattering the ratio.
        "ratio_incremental_vs_full": round(incremental / min(full, full_again), 3),
        "ratio_incremental_vs_full_run": round(incremental_run / min(full_run, full_again_run), 3),
        "ratio_noop_vs_full": round(noop / min(full, full_again), 3),
        "incremental_equals_full_refresh": identical,
        "incremental_model_s": per_model,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--sizes",
        type=int,
        nargs="+",
        default=[1_000_000, 10_000_000],
        help="transaction counts to benchmark (default: 1000000 10000000)",
    )
    parser.add_argument("--workdir", type=Path, default=ROOT / ".condo" / "bench_dbt")
    parser.add_argument("--keep", action="store_true", help="keep the benchmark databases")
    parser.add_argument(
        "--new-dates",
        choices=("recent", "spread"),
        default="recent",
        help="dates of the appended 1%%: the last 30 days (default) or the whole range",
    )
    parser.add_argument("--json", type=Path, help="also write the results to this file")
    args = parser.parse_args()

    admin = connection.resolve()
    results = [bench_size(n, admin, args.workdir, args.keep, args.new_dates) for n in args.sizes]
    print()
    print(
        f"{'transactions':>13} {'full (s)':>9} {'no-op (s)':>10} {'+1% (s)':>8} "
        f"{'+1% / full':>11} {'run-only ratio':>15} {'identical':>10}"
    )
    for r in results:
        print(
            f"{r['transactions']:>13,} {r['full_refresh_s']:>9.1f} {r['incremental_noop_s']:>10.1f} "
            f"{r['incremental_plus_1pct_s']:>8.1f} {r['ratio_incremental_vs_full']:>11.3f} "
            f"{r['ratio_incremental_vs_full_run']:>15.3f} "
            f"{r['incremental_equals_full_refresh']!s:>10}"
        )
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))
    return 0 if all(r["incremental_equals_full_refresh"] for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
