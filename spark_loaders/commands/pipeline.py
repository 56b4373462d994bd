"""``condo pipeline``: load, dbt build, export; then print the gold reports."""

from __future__ import annotations

import argparse
from contextlib import nullcontext
from pathlib import Path

from spark_loaders.domain import DEFAULT_TARGET, POSTGRES_TARGET, TARGETS
from spark_loaders.paths import lake_dir, sample_dir
from spark_loaders.spark_master import add_master_argument, apply_master

REPORTS = (
    ("transacoes_por_condominio", ["condominio_id"]),
    ("transacoes_por_morador", ["morador_id"]),
    ("transacoes_diarias_por_tipo_imovel", ["data_transacao", "tipo_imovel"]),
)


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser(
        "pipeline", help="load the CSVs, run dbt build, export gold to Parquet, print the reports"
    )
    parser.add_argument(
        "--source",
        type=str,  # not Path: a URI such as s3a://bucket/x must keep its '//'
        nargs="+",
        default=None,
        help="CSV files or directories (paths or URIs) to load (default: data/sample/)",
    )
    parser.add_argument(
        "--out",
        type=Path,
        default=None,
        help="where the Parquet datasets go (default: data/lake/gold/)",
    )
    parser.add_argument("--target", choices=TARGETS, default=DEFAULT_TARGET)
    parser.add_argument(
        "--force", action="store_true", help="reload files that were already loaded"
    )
    parser.add_argument(
        "--compact-older-than",
        type=float,
        default=None,
        metavar="DAYS",
        help="after loading, merge bronze load partitions older than DAYS "
        "(`condo bronze compact --older-than DAYS`; postgres target only)",
    )
    parser.add_argument(
        "--no-wait",
        action="store_true",
        help="fail at once if another pipeline or dbt build runs against the database",
    )
    parser.add_argument(
        "--max-rows",
        type=int,
        default=40,
        help="rows of each report to print (default 40; 0 hides them)",
    )
    add_master_argument(parser)
    parser.set_defaults(func=run)


def print_reports(out: Path, max_rows: int) -> None:
    import pyarrow.dataset as ds
    from rich.console import Console
    from rich.table import Table

    console = Console(markup=False, emoji=False)  # report values are user text
    for model, order in REPORTS:
        path = out / model
        table = ds.dataset(path, format="parquet", partitioning="hive").to_table()
        table = table.sort_by([(column, "ascending") for column in order])
        shown = min(max_rows, table.num_rows)
        view = Table(
            title=f"gold.{model} ({table.num_rows} rows{', first ' + str(shown) if shown < table.num_rows else ''})"
        )
        columns = [name for name in table.column_names if name in _report_columns(table)]
        for name in columns:
            view.add_column(
                name, justify="right" if _is_number(table.schema.field(name).type) else "left"
            )
        for row in table.slice(0, shown).select(columns).to_pylist():
            view.add_row(*("" if row[c] is None else str(row[c]) for c in columns))
        console.print(view)
    console.print(
        f"Parquet datasets: {out}/<model>/ (read them with pyarrow, DuckDB, pandas or Spark)"
    )


def _report_columns(table) -> list[str]:
    # Partition columns derived for the layout (e.g. the month) are not part of the report.
    return [
        name
        for name in table.column_names
        if not name.startswith("_") and name not in ("mes", "ano_mes")
    ]


def _is_number(arrow_type) -> bool:
    import pyarrow.types as pat

    return pat.is_integer(arrow_type) or pat.is_decimal(arrow_type) or pat.is_floating(arrow_type)


def run(args: argparse.Namespace) -> int:
    from spark_loaders.pipeline import run_pipeline
    from spark_loaders.run_lock import exclusive_run

    apply_master(args)
    source = args.source or [sample_dir()]
    out = (args.out or lake_dir() / "gold").resolve()

    # The run lock lives in PostgreSQL: a spark-target pipeline has nothing to serialise on.
    lock = (
        exclusive_run("pipeline", wait=not args.no_wait)
        if args.target == POSTGRES_TARGET
        else nullcontext()
    )
    with lock:
        result = run_pipeline(
            source=source,
            out=out,
            target=args.target,
            force=args.force,
            compact_older_than=args.compact_older_than,
        )
    print("\nStage timings: " + ", ".join(f"{s.name} {s.seconds:.1f}s" for s in result.stages))
    if args.max_rows:
        print_reports(out, args.max_rows)
    return 0
