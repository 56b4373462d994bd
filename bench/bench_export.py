"""Benchmark of the gold export (Spark, JDBC) against pyarrow fed by PostgreSQL ``COPY``.

    .venv/bin/python bench/bench_export.py                       # 10M transactions, 5M-row table
    .venv/bin/python bench/bench_export.py -n 1000000 --large-rows 1000000 --repeat 1

What it builds (in its own database ``condo_bench_export`` on the server that
``spark_loaders.connection.resolve()`` picks; the embedded one by default):

* ``bench.transacoes`` with N source transactions over ``--days`` days and ``bench.imoveis``
  with five property types, generated with ``generate_series``; then
  ``gold.transacoes_diarias_por_tipo_imovel`` aggregated from them with the contract's types.
  This stands in for the dbt model (same columns, types and grain), so the benchmark does
  not need the loader and dbt to run first.
* ``gold.transacoes_por_morador`` with ``--large-rows`` rows: the daily table at 10M
  transactions has only about days x types rows, far too small to show whether reading in
  parallel partitions matters, so this larger gold table shows it.

What it measures, all in the same run with one warm SparkSession:

* ``spark export``: :func:`spark_loaders.export.export_gold` (partitioned JDBC read,
  contract casts, zstd Parquet, atomic swap, manifest);
* ``spark export, 1 read partition``: the same with the JDBC read forced through one
  connection (large table only);
* ``pyarrow COPY``: ``COPY (select ...) TO STDOUT (FORMAT csv)`` through psycopg, parsed by
  ``pyarrow.csv`` with the exact column types, written with ``pyarrow.dataset`` in the same
  layout (hive ``mes=YYYY-MM`` for the daily model) and compression: the baseline.

It prints seconds (best of ``--repeat``) and the ratio export / baseline.
"""

from __future__ import annotations

import argparse
import dataclasses
import io
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

DB_NAME = "condo_bench_export"
DAILY = "transacoes_diarias_por_tipo_imovel"
MORADOR = "transacoes_por_morador"
TYPES = ("Apartamento", "Casa", "Cobertura", "Sala Comercial", "Loja")

SETUP_SQL = """
drop schema if exists bench cascade;
drop schema if exists gold cascade;
create schema bench;
create schema gold;
create unlogged table bench.imoveis as
    select g as imovel_id, (array{types})[1 + g % {ntypes}]::varchar(50) as tipo
    from generate_series(1, 50000) g;
create unlogged table bench.transacoes as
    select g as transacao_id,
           1 + floor(random() * 50000)::integer as imovel_id,
           date '2022-01-01' + floor(random() * {days})::integer as data_transacao,
           round((1000 + random() * 2000000)::numeric, 2)::numeric(15,2) as valor_transacao
    from generate_series(1, {n}) g;
create table gold.{daily} as
    select t.data_transacao,
           i.tipo as tipo_imovel,
           count(*)::bigint as qtd_transacoes,
           sum(t.valor_transacao)::numeric(20,2) as valor_total,
           round(avg(t.valor_transacao), 2)::numeric(15,2) as valor_medio
    from bench.transacoes t join bench.imoveis i using (imovel_id)
    group by 1, 2;
create table gold.{morador} as
    select g::integer as morador_id,
           ('Morador ' || g)::varchar(255) as nome_morador,
           (1 + g % 2000)::integer as condominio_id,
           (g % 40)::bigint as qtd_transacoes,
           ((g::bigint * 48271) % 1000000000 / 100.0)::numeric(20,2) as valor_total
    from generate_series(1, {large}) g;
drop table bench.transacoes;
analyze gold.{daily};
analyze gold.{morador};
"""


def _admin_and_bench(info):
    return info, dataclasses.replace(info, dbname=DB_NAME, source="url")


def build(info, n: int, days: int, large: int) -> float:
    import psycopg

    admin, bench = _admin_and_bench(info)
    with psycopg.connect(**admin.psycopg_kwargs(), autocommit=True) as conn:
        conn.execute(f"drop database if exists {DB_NAME} with (force)")
        conn.execute(f"create database {DB_NAME}")
    types = "[" + ", ".join(f"'{t}'" for t in TYPES) + "]"
    sql = SETUP_SQL.format(
        types=types, ntypes=len(TYPES), days=days, n=n, large=large, daily=DAILY, morador=MORADOR
    )
    start = time.perf_counter()
    with psycopg.connect(**bench.psycopg_kwargs(), autocommit=True) as conn:
        conn.execute("set work_mem = '256MB'")
        conn.execute("select setseed(0.42)")
        conn.execute(sql)
    return time.perf_counter() - start


def pyarrow_copy(bench, model, out: Path) -> int:
    """The baseline: COPY to CSV, parse with pyarrow.csv, write with pyarrow.dataset."""
    import psycopg
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.csv as pcsv
    import pyarrow.dataset as pads

    from spark_loaders.export.write_dataset import expected_arrow_schema

    schema = expected_arrow_schema(model)
    buf = io.BytesIO()
    columns = ", ".join(model.column_names)
    with psycopg.connect(**bench.psycopg_kwargs()) as conn, conn.cursor() as cur:
        query = f"copy (select {columns} from gold.{model.name}) to stdout (format csv)"
        with cur.copy(query) as copy:
            for chunk in copy:
                buf.write(chunk)
    buf.seek(0)
    table = pcsv.read_csv(
        buf,
        read_options=pcsv.ReadOptions(column_names=schema.names, block_size=16 << 20),
        convert_options=pcsv.ConvertOptions(column_types=schema),
    )
    partitioning = None
    if model.lake_partition is not None:
        mes = pc.strftime(table[model.lake_partition.source_column], format="%Y-%m")
        table = table.append_column(model.lake_partition.name, mes)
        partitioning = pads.partitioning(
            pa.schema([pa.field(model.lake_partition.name, pa.string())]), flavor="hive"
        )
    pads.write_dataset(
        table,
        out,
        format="parquet",
        partitioning=partitioning,
        file_options=pads.ParquetFileFormat().make_write_options(compression="zstd"),
        existing_data_behavior="delete_matching",
    )
    return table.num_rows


def read_only(spark, bench, model, partitions: int) -> None:
    """Only the JDBC read, into Spark's ``noop`` sink: what parallel partitions buy."""
    from spark_loaders.export.read_gold import PgSnapshot, plan_read, read_postgres

    with PgSnapshot(bench, "gold") as snap:
        plan = plan_read(
            snap.stats(model), model.split_column, max_partitions=partitions, rows_per_partition=1
        )
        read_postgres(spark, model, snap, plan).write.format("noop").mode("overwrite").save()


def best_of(repeat: int, fn: Callable[[], object]) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("-n", "--transactions", type=int, default=10_000_000)
    parser.add_argument("--days", type=int, default=3 * 365, help="days the transactions span")
    parser.add_argument(
        "--large-rows",
        type=int,
        default=5_000_000,
        help="rows of the larger gold table (0 to skip it)",
    )
    parser.add_argument("--repeat", type=int, default=2, help="runs per measurement (best kept)")
    parser.add_argument(
        "--reuse",
        action="store_true",
        help=f"keep and reuse the {DB_NAME} database from a previous run",
    )
    parser.add_argument("--keep", action="store_true", help=f"do not drop {DB_NAME} at the end")
    args = parser.parse_args()

    import psycopg

    from spark_loaders import connection
    from spark_loaders.export import ExportOptions, export_gold
    from spark_loaders.export.models import select_models
    from spark_loaders.spark_session import get_spark

    info = connection.resolve()
    admin, bench = _admin_and_bench(info)
    if args.reuse:
        print(f"reusing database {DB_NAME}")
    else:
        print(f"building {args.transactions:,} transactions and a {args.large_rows:,}-row table...")
        print(
            f"  setup in PostgreSQL: {build(info, args.transactions, args.days, args.large_rows):.1f}s"
        )
    os.environ["CONDO_DATABASE_URL"] = bench.url()

    start = time.perf_counter()
    spark = get_spark("bench-export")
    spark_start = time.perf_counter() - start
    parallelism = spark.sparkContext.defaultParallelism
    print(f"Spark session start: {spark_start:.1f}s (not counted below), parallelism {parallelism}")
    work = Path(tempfile.mkdtemp(prefix="bench-export-"))
    rows: list[tuple[str, int, float, float, float | None]] = []
    reads: dict[int, float] = {}
    try:
        with psycopg.connect(**bench.psycopg_kwargs()) as conn:
            counts = {
                m: conn.execute(f"select count(*) from gold.{m}").fetchone()[0]
                for m in (DAILY, MORADOR)
            }
        export_gold(spark, out=work / "warmup", models=[DAILY])  # JIT warm-up, not timed
        models = [DAILY] + ([MORADOR] if args.large_rows else [])
        for name in models:
            model = select_models([name])[0]
            t_export = best_of(
                args.repeat, lambda n=name: export_gold(spark, out=work / "spark", models=[n])
            )
            t_single = None
            if name == MORADOR:
                t_single = best_of(
                    args.repeat,
                    lambda n=name: export_gold(
                        spark,
                        out=work / "spark1",
                        models=[n],
                        options=ExportOptions(max_read_partitions=1),
                    ),
                )
                for parts in (1, max(2, 2 * parallelism)):
                    reads[parts] = best_of(
                        args.repeat, lambda p=parts, m=model: read_only(spark, bench, m, p)
                    )
            t_arrow = best_of(
                args.repeat, lambda m=model: pyarrow_copy(bench, m, work / "arrow" / m.name)
            )
            rows.append((name, counts[name], t_export, t_arrow, t_single))
    finally:
        shutil.rmtree(work, ignore_errors=True)
        if not args.keep:
            with psycopg.connect(**admin.psycopg_kwargs(), autocommit=True) as conn:
                conn.execute(f"drop database if exists {DB_NAME} with (force)")

    print()
    print(
        f"{'model':36} {'rows':>10} {'export s':>9} {'1-conn s':>9} {'pyarrow s':>10} {'ratio':>6}"
    )
    for name, count, t_export, t_arrow, t_single in rows:
        single = f"{t_single:9.2f}" if t_single is not None else f"{'-':>9}"
        print(
            f"{name:36} {count:>10,} {t_export:9.2f} {single} {t_arrow:10.2f} "
            f"{t_export / t_arrow:6.2f}"
        )
    print("ratio = Spark export seconds / pyarrow-from-COPY seconds (lower is better)")
    for parts, seconds in reads.items():
        print(f"JDBC read alone of {MORADOR} (noop sink), {parts} partition(s): {seconds:.2f}s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
