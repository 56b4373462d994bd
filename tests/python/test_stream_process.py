"""Streaming ingestion in its own process, the way users and schedulers run it: the spark-submit
entry killed with SIGKILL between the PostgreSQL commit and Spark's commit, then restarted from
the same checkpoint. A Spark start-up costs 10-60 s on a busy machine, so the restart runs in
this process on the shared session."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import psycopg

from spark_loaders.domain import ENTITY_ORDER

PROJECT = Path(__file__).resolve().parents[2]
SAMPLE = PROJECT / "data" / "sample"
JDBC_JAR = Path("/usr/share/java/postgresql.jar")


def _env(tmp: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "PYSPARK_GATEWAY_PORT"}
    import pyspark

    env.update(
        SPARK_HOME=str(Path(pyspark.__file__).parent),
        PYSPARK_PYTHON=sys.executable,
        PYSPARK_DRIVER_PYTHON=sys.executable,
        PATH=f"{Path(sys.executable).parent}:{env.get('PATH', '')}",
        CONDO_STATE_DIR=str(tmp / "state"),
        CONDO_SPARK_DIR=str(tmp / "spark"),
        CONDO_SPARK_MASTER="local[2]",
        CONDO_SPARK_DRIVER_MEMORY="1g",
        PYTHONUNBUFFERED="1",
    )
    env.update(extra)
    return env


def _args(tmp: Path) -> list[str]:
    return [
        "--landing", str(tmp / "landing"),
        "--checkpoint", str(tmp / "checkpoint"),
        "--archive", str(tmp / "processed"),
        "--rejected", str(tmp / "rejected"),
        "--status-file", str(tmp / "status.json"),
        "--max-files-per-trigger", "4",
    ]  # fmt: skip


def _counts(url: str) -> dict[str, int]:
    with psycopg.connect(url) as conn:
        return {
            e: conn.execute(f"select count(*) from bronze.{e}").fetchone()[0] for e in ENTITY_ORDER
        }


def _duplicates(url: str) -> int:
    with psycopg.connect(url) as conn:
        return sum(
            conn.execute(
                f"select count(*) - count(distinct (_source_file, _source_line)) from bronze.{e}"
            ).fetchone()[0]
            for e in ENTITY_ORDER
        )


def _numbered(directory: Path) -> set[int]:
    return (
        {int(p.name) for p in directory.iterdir() if p.name.isdigit()}
        if directory.exists()
        else set()
    )


def test_sigkill_between_write_and_commit_then_restart(spark, fresh_db, tmp_path: Path):
    url = fresh_db.url()
    landing = tmp_path / "landing"
    landing.mkdir()
    for i, e in enumerate(ENTITY_ORDER):
        target = landing / f"{e}.csv"
        tmp = landing / f".{e}.tmp"
        tmp.write_bytes((SAMPLE / f"{e}.csv").read_bytes())
        os.utime(tmp, (1_700_000_000 + i, 1_700_000_000 + i))  # landing order = dependency order
        os.replace(tmp, target)

    # 1. spark-submit run with the fault hook: SIGKILL right after micro-batch 0 (the four
    #    files) committed in PostgreSQL, before Spark commits it.
    submit = [str(PROJECT / ".venv" / "bin" / "spark-submit"), "--master", "local[2]"]
    if JDBC_JAR.is_file():
        submit += ["--jars", str(JDBC_JAR)]
    crashed = subprocess.run(
        [
            *submit,
            str(PROJECT / "spark_loaders" / "stream_files.py"),
            *_args(tmp_path),
            "--available-now",
        ],
        cwd=PROJECT,
        env=_env(tmp_path, CONDO_STREAM_FAULT="after_write:0"),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert crashed.returncode != 0, crashed.stdout + crashed.stderr
    assert "fault injection after_write:0" in crashed.stdout, crashed.stdout + crashed.stderr
    # Everything is in PostgreSQL, but Spark never committed micro-batch 0.
    assert _counts(url) == {"condominios": 3, "imoveis": 36, "moradores": 39, "transacoes": 22}
    checkpoint = tmp_path / "checkpoint"
    assert _numbered(checkpoint / "offsets") == {0}
    assert _numbered(checkpoint / "commits") == set()

    # 2. Restart from the same checkpoint (in this process, with the shared session): micro-batch
    #    0 is replayed with the same files, which the loader skips.
    from spark_loaders.streaming.run import StreamConfig, run_stream

    cfg = StreamConfig(
        landing=str(landing),
        checkpoint=str(checkpoint),
        archive=str(tmp_path / "processed"),
        rejected=tmp_path / "rejected",
        status_file=tmp_path / "status.json",
        available_now=True,
        max_files_per_trigger=4,
    )
    lines: list[str] = []
    result = run_stream(spark, cfg, log=lines.append)
    assert result.query_id == json.loads((checkpoint / "metadata").read_text())["id"]
    assert any("replay (attempt 2)" in line for line in lines), lines

    assert _counts(url) == {"condominios": 3, "imoveis": 36, "moradores": 39, "transacoes": 22}
    assert _duplicates(url) == 0
    assert _numbered(checkpoint / "offsets") == _numbered(checkpoint / "commits") == {0}
    with psycopg.connect(url) as conn:
        batches = conn.execute(
            "select batch_id, files_total, files_loaded, rows_loaded, attempts "
            "from ops.stream_batches order by batch_id"
        ).fetchall()
        loaded_twice = conn.execute(
            "select count(*) from (select content_hash from ops.loads where status = 'loaded' "
            "group by entity, content_hash having count(*) > 1) d"
        ).fetchone()[0]
        skipped = conn.execute(
            "select count(*) from ops.loads where status = 'skipped' and stream_batch_id = 0"
        ).fetchone()[0]
    # The replayed batch keeps its totals: its files count as loaded by it, not as skipped.
    assert batches == [(0, 4, 4, 3 + 36 + 39 + 22, 2)]
    assert loaded_twice == 0 and skipped == 4


def test_stream_files_entry_runs_as_a_script() -> None:
    result = subprocess.run(
        [sys.executable, str(PROJECT / "spark_loaders" / "stream_files.py"), "--help"],
        cwd="/",
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert "--available-now" in result.stdout
