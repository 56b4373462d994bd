"""Streaming hazards through the real stack: the shared SparkSession runs the
query, the real batch loader writes to a fresh PostgreSQL database, files are real."""

from __future__ import annotations

import os
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import psycopg
from test_stream import config, drop

HEADER = b"imovel_id,morador_id,data_transacao,valor_transacao\n"
DAY = 86400


def _tx(n: int) -> bytes:
    return HEADER + f"{n},{n},2024-03-01,{n}.00\n".encode()


def _ledger(db: Any) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    with psycopg.connect(db.url()) as conn:
        for name, status in conn.execute(
            "select source_file, status from ops.loads order by load_id"
        ).fetchall():
            out.setdefault(name, []).append(status)
    return out


def test_files_with_old_future_or_equal_mtimes_are_ingested_across_a_restart(
    spark, fresh_db, tmp_path: Path
) -> None:
    cfg = config(tmp_path)
    landing = Path(cfg.landing)
    drop(landing, "transacoes_now.csv", _tx(1))
    # A symbolic link to a file outside the landing directory: refused, never followed.
    secret = tmp_path / "outside.csv"
    secret.write_bytes(HEADER + b"1,1,2024-03-01,TOP-SECRET\n")
    os.symlink(secret, landing / "transacoes_link.csv")
    first = run_stream_quiet(spark, cfg)
    assert first.totals["files_loaded"] == 1 and first.totals["files_rejected"] == 1
    assert sorted(p.name for p in cfg.rejected.iterdir()) == ["transacoes_link.csv.reason.txt"]
    reason = (cfg.rejected / "transacoes_link.csv.reason.txt").read_text()
    assert "symlink" in reason and "TOP-SECRET" not in reason
    assert secret.read_bytes().endswith(b"TOP-SECRET\n")  # the target is left alone

    now = time.time()
    old = drop(landing, "transacoes_old.csv", _tx(2))  # cp -p / rsync -a / tar: 30 days old
    os.utime(old, (now - 30 * DAY, now - 30 * DAY))
    future = drop(landing, "transacoes_future.csv", _tx(3))  # a clock a day ahead
    os.utime(future, (now + DAY, now + DAY))
    same = drop(landing, "transacoes_same.csv", _tx(4))  # the same mtime as the old one
    os.utime(same, (now - 30 * DAY, now - 30 * DAY))

    second = run_stream_quiet(spark, cfg)  # a restart on the same checkpoint
    assert second.totals["files_loaded"] == 3

    # After a file from the future, an older one still comes in (a third run).
    older = drop(landing, "transacoes_older.csv", _tx(5))
    os.utime(older, (now - 60 * DAY, now - 60 * DAY))
    third = run_stream_quiet(spark, cfg)
    assert third.totals["files_loaded"] == 1
    assert _ledger(fresh_db) == {
        **{f"transacoes_{n}.csv": ["loaded"] for n in ("now", "old", "future", "same", "older")},
        "transacoes_link.csv": ["rejected"],
    }


def run_stream_quiet(spark: Any, cfg: Any) -> Any:
    from spark_loaders.streaming.run import run_stream

    return run_stream(spark, cfg, log=lambda _line: None)


def _bronze_lines(db: Any, name: str) -> int:
    with psycopg.connect(db.url()) as conn:
        return conn.execute(
            "select count(*) from bronze.transacoes where _source_file = %s", (name,)
        ).fetchone()[0]


def _monitor(status_file: Path) -> tuple[int, dict[str, Any]]:
    import json
    import subprocess
    import sys

    cmd = [sys.executable, "-m", "spark_loaders.cli", "monitor", "--format", "json"]
    done = subprocess.run(
        [*cmd, "--stream-status", str(status_file)],
        cwd=Path(__file__).resolve().parents[2],
        capture_output=True,
        text=True,
        timeout=120,
    )
    checks = {c["name"]: c for c in json.loads(done.stdout)["checks"]}
    return done.returncode, checks


def test_a_failing_file_is_retried_with_backoff_and_does_not_stop_the_stream(
    spark, fresh_db, tmp_path: Path, monkeypatch
) -> None:
    from test_stream import Background, wait_for

    from spark_loaders.ingest import file_load

    cfg = config(tmp_path, settle_seconds=0.0, retry_base_seconds=0.5)
    landing = Path(cfg.landing)
    live = drop(landing, "transacoes_a.csv", _tx(1))
    drop(landing, "transacoes_b.csv", _tx(2))
    original = file_load.copy_lines

    def exporter_still_writing(checked, entity, **options):
        # Every time the loader has parsed transacoes_a.csv, more of it arrives.
        if options["source_file"] == "transacoes_a.csv":
            with live.open("ab") as handle:
                handle.write(b"9,9,2024-03-09,9.00\n")
        return original(checked, entity, **options)

    monkeypatch.setattr(file_load, "copy_lines", exporter_still_writing)
    first = run_stream_quiet(spark, cfg)
    # b went in; a failed in the micro-batch and again in the run's final retry, and waits.
    assert first.totals["files_loaded"] == 1 and first.pending_retries == 1
    assert first.exit_code == 1
    assert _bronze_lines(fresh_db, "transacoes_b.csv") == 1
    with psycopg.connect(fresh_db.url()) as conn:
        ((reason, attempts),) = conn.execute(
            "select reason, attempts from ops.stream_retries"
        ).fetchall()
        assert reason == "changed_during_load" and attempts >= 2
    code, checks = _monitor(cfg.status_file)
    assert code == 2 and checks["stream.retries"]["level"] == "error"
    assert "transacoes_a.csv" in checks["stream.retries"]["message"]

    # The writer is done. A running stream retries a on its own (it was archived meanwhile)
    # while other files keep arriving and loading.
    monkeypatch.setattr(file_load, "copy_lines", original)
    bg = Background(spark, replace(cfg, available_now=False, trigger_seconds=0.5))
    try:
        drop(landing, "transacoes_c.csv", _tx(3))
        wait_for(lambda: _bronze_lines(fresh_db, "transacoes_a.csv") > 0, 90, "a's retry")
        wait_for(lambda: _bronze_lines(fresh_db, "transacoes_c.csv") == 1, 90, "c to load")
    finally:
        bg.finish()
    assert bg.error is None
    lines = len(live.read_bytes().splitlines()) if live.exists() else None
    archived = Path(cfg.archive) / str(live).lstrip("/")
    lines = lines or len(archived.read_bytes().splitlines())
    assert _bronze_lines(fresh_db, "transacoes_a.csv") == lines - 1
    with psycopg.connect(fresh_db.url()) as conn:
        assert conn.execute("select count(*) from ops.stream_retries").fetchone()[0] == 0
    statuses = _ledger(fresh_db)["transacoes_a.csv"]
    assert statuses[-1] == "loaded" and set(statuses[:-1]) == {"failed"}
    code, checks = _monitor(cfg.status_file)
    assert checks["stream.retries"]["level"] == "ok"


def test_a_file_written_in_place_is_loaded_once_it_settles(spark, fresh_db, tmp_path: Path) -> None:
    import threading

    from test_stream import Background, wait_for

    cfg = config(tmp_path, available_now=False, trigger_seconds=0.5, settle_seconds=1.5)
    landing = Path(cfg.landing)
    path = landing / "transacoes_slow.csv"
    done = threading.Event()
    written = [0]

    def seen_by_loader() -> bool:
        with psycopg.connect(fresh_db.url()) as conn:
            return conn.execute("select count(*) from ops.loads").fetchone()[0] > 0

    def slow_copy() -> None:
        # Not the write-then-rename convention: a slow copy straight into the landing dir.
        # It goes on for 12 s, or until the loader touches the file (a loader that does not
        # wait for the file to settle does so within a trigger or two).
        path.write_bytes(_tx(1))
        written[0] = 1
        deadline = time.monotonic() + 12
        while time.monotonic() < deadline and not seen_by_loader():
            time.sleep(0.3)
            written[0] += 1
            n = written[0]
            with path.open("ab") as handle:
                handle.write(f"{n},{n},2024-03-01,{n}.00\n".encode())
        done.set()

    bg = Background(spark, cfg)
    try:
        wait_for(lambda: (Path(cfg.checkpoint) / "metadata").exists(), 60, "the query to start")
        writer = threading.Thread(target=slow_copy, daemon=True)
        writer.start()
        wait_for(done.is_set, 60, "the slow copy to finish")
        wait_for(lambda: _bronze_lines(fresh_db, "transacoes_slow.csv") > 0, 60, "the load")
        time.sleep(2)
    finally:
        bg.finish()
    assert bg.error is None, bg.error
    assert _bronze_lines(fresh_db, "transacoes_slow.csv") == written[0]
    assert _ledger(fresh_db) == {"transacoes_slow.csv": ["loaded"]}
