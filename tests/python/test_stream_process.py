"""Streaming ingestion in its own process, the way users and schedulers run it: killed with
SIGKILL between the PostgreSQL commit and Spark's commit, restarted from the same checkpoint,
then stopped with SIGTERM. Each Spark start-up costs 10-15 s, so one test covers the sequence."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import psycopg

PROJECT = Path(__file__).resolve().parents[2]
SAMPLE = PROJECT / "data" / "sample"
ENTITIES = ("condominios", "imoveis", "moradores", "transacoes")
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
        return {e: conn.execute(f"select count(*) from bronze.{e}").fetchone()[0] for e in ENTITIES}


def _duplicates(url: str) -> int:
    with psycopg.connect(url) as conn:
        return sum(
            conn.execute(
                f"select count(*) - count(distinct (_source_file, _source_line)) from bronze.{e}"
            ).fetchone()[0]
            for e in ENTITIES
        )


def _numbered(directory: Path) -> set[int]:
    return (
        {int(p.name) for p in directory.iterdir() if p.name.isdigit()}
        if directory.exists()
        else set()
    )


def test_sigkill_between_write_and_commit_then_restart_and_sigterm(fresh_db, tmp_path: Path):
    url = fresh_db.url()
    landing = tmp_path / "landing"
    landing.mkdir()
    for i, e in enumerate(ENTITIES):
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

    # 2. Restart from the same checkpoint in continuous mode: micro-batch 0 is replayed with the
    #    same files, which the loader skips; a new file arrives; then SIGTERM.
    proc = subprocess.Popen(
        [str(PROJECT / ".venv" / "bin" / "condo"), "stream", *_args(tmp_path), "--trigger", "1"],
        cwd=PROJECT,
        env=_env(tmp_path),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        status_file = tmp_path / "status.json"
        deadline = time.monotonic() + 120
        while not (status_file.exists() and _status(status_file)["totals"]["batches"] >= 1):
            assert proc.poll() is None, proc.stdout.read()
            assert time.monotonic() < deadline, "the restarted stream did not replay batch 0"
            time.sleep(0.2)
        tmp = landing / ".transacoes_late.tmp"
        tmp.write_bytes(
            b"imovel_id,morador_id,data_transacao,valor_transacao\n1,1,2024-05-01,9.99\n"
        )
        os.replace(tmp, landing / "transacoes_late.csv")
        while _counts(url)["transacoes"] != 23:
            assert proc.poll() is None, proc.stdout.read()
            assert time.monotonic() < deadline, "the late file never reached bronze"
            time.sleep(0.2)
        proc.send_signal(signal.SIGTERM)
        output, _ = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0, output
    assert "stopping after the current micro-batch" in output

    assert _counts(url) == {"condominios": 3, "imoveis": 36, "moradores": 39, "transacoes": 23}
    assert _duplicates(url) == 0
    assert _numbered(checkpoint / "offsets") == _numbered(checkpoint / "commits") == {0, 1}
    with psycopg.connect(url) as conn:
        batches = conn.execute(
            "select batch_id, files_total, files_loaded, rows_loaded, attempts "
            "from ops.stream_batches order by batch_id"
        ).fetchall()
        loaded_twice = conn.execute(
            "select count(*) from (select content_hash from ops.loads where status = 'loaded' "
            "group by entity, content_hash having count(*) > 1) d"
        ).fetchone()[0]
    # The replayed batch keeps its totals (its files count as loaded by it, not as skipped).
    assert batches == [(0, 4, 4, 3 + 36 + 39 + 22, 2), (1, 1, 1, 1, 1)]
    assert loaded_twice == 0
    assert _status(tmp_path / "status.json")["state"] == "stopped"


def _status(path: Path) -> dict:
    return json.loads(path.read_text())


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
