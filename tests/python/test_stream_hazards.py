"""Streaming hazards (issue 10) through the real stack: the shared SparkSession runs the
query, the real batch loader writes to a fresh PostgreSQL database, files are real."""

from __future__ import annotations

import os
import time
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
    first = run_stream_quiet(spark, cfg)
    assert first.totals["files_loaded"] == 1

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
        f"transacoes_{n}.csv": ["loaded"] for n in ("now", "old", "future", "same", "older")
    }


def run_stream_quiet(spark: Any, cfg: Any) -> Any:
    from spark_loaders.streaming.run import run_stream

    return run_stream(spark, cfg, log=lambda _line: None)
