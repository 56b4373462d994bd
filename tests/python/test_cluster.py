"""The same jobs on a real Spark standalone cluster (one master, one worker, executors in
JVMs and Python workers of their own) must give exactly what local mode gives.

Each test runs the cluster side as a user would (``condo ... --master spark://...`` or
``spark-submit``, a driver process of its own) against one scratch database, and the local
side in this process on the shared ``local[2]`` session against another; then compares the
databases or the Parquet. Load ids and timestamps differ legitimately and are left out.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pyarrow.parquet as pq
import pytest
from export_gold_data import create_gold
from pg_helpers import scratch_database
from spark_cluster import Cluster

from spark_loaders.domain import ENTITY_ORDER
from spark_loaders.spark_session import package_zip

pytestmark = pytest.mark.slow

PROJECT = Path(__file__).resolve().parents[2]
SAMPLE = PROJECT / "data" / "sample"
VENV_BIN = PROJECT / ".venv" / "bin"
# Columns whose values legitimately differ between two runs of the same load.
RUN_SPECIFIC = {
    "_load_id", "load_id", "_loaded_at", "rejected_at", "started_at", "finished_at", "replaced_by",
}  # fmt: skip
# Ledger columns that say how a file was reached and read, which differ between local paths
# (the vectorised path where it applies) and Hadoop URIs (always Spark's parsers) by design.
READ_SPECIFIC = {"source_path", "parser"}
# Small thresholds, so the executors parse and COPY (the parallel parser and the bulk path),
# which is where a cluster differs from local mode.
ON_EXECUTORS = {"CONDO_LOAD_PARALLEL_MIN_BYTES": "1", "CONDO_LOAD_BULK_MIN_BYTES": "1"}

BAD_TRANSACOES = (
    "imovel_id,morador_id,data_transacao,valor_transacao\n"
    "1,3,2024-02-10,1000.00\n"
    "1,3,2024-02-31,1000.00\n"  # no such date
    "x,3,2024-02-11,5.00\n"  # not an id
    '2,4,2024-02-12,"1500.50"\n'
    "2,4,2024-02-13,-3\n"
)
QUOTED_CONDOMINIOS = (  # a record spanning two lines: the exact parser takes this file
    "nome,endereco\n"
    'Condomínio Z,"Rua 9, ""Bloco"" C\nsegunda linha"\n'
    "Condomínio Y,Rua 8, 10, Centro\n"
)
WHOLLY_REJECTED = "nome,cidade\nCondomínio W,Recife\n"  # no endereco column


def extract(directory: Path) -> Path:
    directory.mkdir(parents=True)
    for entity in ENTITY_ORDER:
        shutil.copy(SAMPLE / f"{entity}.csv", directory / f"{entity}.csv")
    (directory / "transacoes_fevereiro.csv").write_text(BAD_TRANSACOES, encoding="utf-8")
    (directory / "condominios_extra.csv").write_text(QUOTED_CONDOMINIOS, encoding="utf-8")
    (directory / "condominios_broken.csv").write_text(WHOLLY_REJECTED, encoding="utf-8")
    return directory


def _columns(conn: psycopg.Connection, schema: str, table: str, drop: set[str]) -> list[str]:
    names = conn.execute(
        "select column_name from information_schema.columns "
        "where table_schema = %s and table_name = %s order by ordinal_position",
        (schema, table),
    ).fetchall()
    assert names, f"{schema}.{table} does not exist"
    return [n for (n,) in names if n not in drop]


def table_rows(url: str, table: str, drop: set[str] = frozenset()) -> list[tuple]:
    schema, name = table.split(".")
    with psycopg.connect(url) as conn:
        columns = _columns(conn, schema, name, RUN_SPECIFIC | set(drop))
        select = ", ".join(f"{c}::text" for c in columns)
        rows = conn.execute(f"select {select} from {table}").fetchall()
    return sorted(rows, key=lambda r: tuple("" if v is None else v for v in r))


def database_state(url: str, *, ledger_drop: set[str] = frozenset()) -> dict[str, list[tuple]]:
    tables = [f"bronze.{e}" for e in ENTITY_ORDER] + ["bronze.rejected_rows"]
    state = {t: table_rows(url, t) for t in tables}
    state["ops.loads"] = table_rows(url, "ops.loads", ledger_drop)
    return state


def run_cli(cluster: Cluster, args: list[str], **env: str) -> subprocess.CompletedProcess:
    result = subprocess.run(
        args,
        cwd=PROJECT,
        env={**cluster.env, **env},
        capture_output=True,
        text=True,
        timeout=600,
    )
    return result


@pytest.fixture
def second_db(pg_server) -> Iterator:
    with scratch_database(pg_server, prefix="cluster") as info:
        yield info


def test_load_on_the_cluster_equals_local(
    spark, spark_cluster: Cluster, fresh_db, second_db, tmp_path, monkeypatch
) -> None:
    from spark_loaders.ingest.api import ingest_files

    source = extract(tmp_path / "extract")
    for key, value in ON_EXECUTORS.items():
        monkeypatch.setenv(key, value)
    report = ingest_files(spark, [str(source)], progress=False)
    statuses = sorted((f.path.name, f.status) for f in report.files)
    assert ("condominios_broken.csv", "rejected") in statuses
    assert report.rows_rejected > 0

    # The cluster run: input as a file:// URI, read, listed and hashed through Hadoop's
    # FileSystem API (CONDO_FILE_ACCESS=hadoop), parsed and written by the executors.
    cluster = run_cli(
        spark_cluster,
        [str(VENV_BIN / "condo"), "load", source.as_uri(), "--master", spark_cluster.url],
        CONDO_DATABASE_URL=second_db.url(),
        CONDO_FILE_ACCESS="hadoop",
        **ON_EXECUTORS,
    )
    assert cluster.returncode == 1, cluster.stdout + cluster.stderr  # the rejected file
    assert "condominios_broken.csv" in cluster.stdout
    local_state = database_state(fresh_db.url(), ledger_drop=READ_SPECIFIC)
    cluster_state = database_state(second_db.url(), ledger_drop=READ_SPECIFIC)
    for table, rows in local_state.items():
        assert cluster_state[table] == rows, table
    assert len(local_state["bronze.rejected_rows"]) >= 3
    # Hadoop-read files are recorded under their URI, and read by Spark's parsers.
    with psycopg.connect(second_db.url()) as conn:
        paths = {p for (p,) in conn.execute("select source_path from ops.loads")}
        parsers = {
            p for (p,) in conn.execute("select parser from ops.loads where status = 'loaded'")
        }
    assert paths == {(source / name).as_uri().replace("file:///", "file:/") for name, _ in statuses}
    assert parsers and None not in parsers and "vectorised" not in parsers


def test_export_on_the_cluster_equals_local(spark, spark_cluster: Cluster, fresh_db, tmp_path):
    from spark_loaders.export import export_gold

    with psycopg.connect(**fresh_db.psycopg_kwargs()) as conn:
        create_gold(conn)
    local_out = tmp_path / "local"
    export_gold(spark, out=local_out)
    cluster_out = tmp_path / "cluster"
    cluster = run_cli(
        spark_cluster,
        [str(VENV_BIN / "condo"), "export", "--out", str(cluster_out),
         "--master", spark_cluster.url],
        CONDO_DATABASE_URL=fresh_db.url(),
    )  # fmt: skip
    assert cluster.returncode == 0, cluster.stdout + cluster.stderr
    models = sorted(p.name for p in local_out.iterdir() if p.is_dir())
    assert models == sorted(p.name for p in cluster_out.iterdir() if p.is_dir())
    assert len(models) == 3
    for model in models:
        local_table = pq.read_table(local_out / model)
        cluster_table = pq.read_table(cluster_out / model)
        assert cluster_table.schema == local_table.schema, model
        columns = local_table.column_names
        local_rows = sorted(tuple(r[c] for c in columns) for r in local_table.to_pylist())
        cluster_rows = sorted(tuple(r[c] for c in columns) for r in cluster_table.to_pylist())
        assert cluster_rows == local_rows, model
        assert local_rows


def _landing(base: Path) -> Path:
    landing = base / "landing"
    landing.mkdir(parents=True)
    for i, entity in enumerate(ENTITY_ORDER):
        staged = landing / f".{entity}.tmp"
        staged.write_bytes((SAMPLE / f"{entity}.csv").read_bytes())
        os.utime(staged, (1_700_000_000 + i, 1_700_000_000 + i))  # dependency order
        os.replace(staged, landing / f"{entity}.csv")
    return landing


def _stream_args(base: Path) -> list[str]:
    return [
        "--landing", str(base / "landing"), "--checkpoint", str(base / "checkpoint"),
        "--archive", str(base / "processed"), "--rejected", str(base / "rejected"),
        "--status-file", str(base / "status.json"), "--max-files-per-trigger", "2",
    ]  # fmt: skip


def _stream_state(url: str) -> dict[str, list[tuple]]:
    state = database_state(url, ledger_drop=READ_SPECIFIC | {"stream_query_id"})
    with psycopg.connect(url) as conn:
        state["ops.stream_batches"] = conn.execute(
            "select batch_id, files_total, files_loaded, files_skipped, files_rejected, "
            "rows_read, rows_loaded, rows_rejected, attempts, "
            "(select array_agg(f->>'path' order by f->>'path') "
            "   from jsonb_array_elements(files) f) "
            "from ops.stream_batches order by batch_id"
        ).fetchall()
    return state


def _names(row: tuple) -> tuple:
    """A stream batch row with its file paths reduced to names (the landing dirs differ)."""
    return (*row[:-1], sorted(Path(p).name for p in row[-1]))


def test_stream_on_the_cluster_equals_local(
    spark, spark_cluster: Cluster, fresh_db, second_db, tmp_path
) -> None:
    from spark_loaders.streaming.run import StreamConfig, prepare_database, run_stream

    local = tmp_path / "local"
    _landing(local)
    from spark_loaders import connection
    from spark_loaders.streaming.run import _connector

    prepare_database(_connector(connection.resolve()))
    cfg = StreamConfig(
        landing=str(local / "landing"),
        checkpoint=str(local / "checkpoint"),
        archive=str(local / "processed"),
        rejected=local / "rejected",
        status_file=local / "status.json",
        available_now=True,
        max_files_per_trigger=2,
    )
    run_stream(spark, cfg, log=lambda _line: None)

    remote = tmp_path / "cluster"
    _landing(remote)
    cluster = run_cli(
        spark_cluster,
        [str(VENV_BIN / "condo"), "stream", "--available-now", "--master", spark_cluster.url,
         *_stream_args(remote)],
        CONDO_DATABASE_URL=second_db.url(),
    )  # fmt: skip
    assert cluster.returncode == 0, cluster.stdout + cluster.stderr

    local_state = _stream_state(fresh_db.url())
    cluster_state = _stream_state(second_db.url())
    # Two micro-batches of two files each, every row once.
    assert [b[:3] for b in local_state["ops.stream_batches"]] == [(0, 2, 2), (1, 2, 2)]
    assert len(local_state["bronze.transacoes"]) == 22
    for table, rows in local_state.items():
        if table == "ops.stream_batches":
            assert [_names(r) for r in cluster_state[table]] == [_names(r) for r in rows]
        else:
            assert cluster_state[table] == rows, table
    # Spark archives a batch's files when the next batch starts: the same files either way.
    archived = [sorted(p.name for p in (b / "processed").rglob("*.csv")) for b in (local, remote)]
    assert archived[0] == archived[1] and archived[0]


def test_spark_submit_with_py_files_on_the_cluster(
    spark, spark_cluster: Cluster, fresh_db, second_db, tmp_path, monkeypatch
) -> None:
    from spark_loaders.ingest.api import ingest_files

    for key, value in ON_EXECUTORS.items():
        monkeypatch.setenv(key, value)
    ingest_files(spark, [str(SAMPLE)], progress=False)

    dist = package_zip(tmp_path)  # what `make dist` writes to dist/spark_loaders.zip
    submit = [
        str(VENV_BIN / "spark-submit"), "--master", spark_cluster.url,
        "--conf", "spark.executor.memory=1g", "--driver-memory", "1g",
        "--py-files", str(dist),
    ]  # fmt: skip
    jar = Path("/usr/share/java/postgresql.jar")
    if jar.is_file():
        submit += ["--jars", str(jar)]
    result = run_cli(
        spark_cluster,
        [*submit, str(PROJECT / "spark_loaders" / "load_files.py"), SAMPLE.as_uri()],
        CONDO_DATABASE_URL=second_db.url(),
        **ON_EXECUTORS,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert database_state(second_db.url()) == database_state(fresh_db.url())
