"""Atomicity under SIGKILL: a loader killed while it is writing rows leaves nothing visible,
and the next run loads the file completely with nothing to clean up by hand."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from load_helpers import leftover_tables, load, rows, scalar

PROJECT = Path(__file__).resolve().parents[2]
ROWS = 1_000_000
BAD_EVERY = 997  # every 997th row has an invalid amount


def write_transactions(path: Path, n: int) -> int:
    """Returns the number of rows written with an invalid amount."""
    bad = 0
    with path.open("w", encoding="utf-8") as out:
        out.write("imovel_id,morador_id,data_transacao,valor_transacao\n")
        step = 100_000
        for start in range(1, n + 1, step):
            chunk = []
            for i in range(start, min(start + step, n + 1)):
                amount = "-1.00" if i % BAD_EVERY == 0 else f"{i % 90_000 + 10}.{i % 100:02d}"
                chunk.append(
                    f"{i % 5000 + 1},{i % 7000 + 1},2024-{i % 12 + 1:02d}-{i % 28 + 1:02d},{amount}\n"
                )
            out.write("".join(chunk))
    bad = n // BAD_EVERY
    return bad


def _copy_in_progress(db) -> int:
    return scalar(db, "select coalesce(sum(tuples_processed), 0) from pg_stat_progress_copy")


def test_sigkill_while_writing_then_rerun(spark, fresh_db, tmp_path, test_state_dir) -> None:
    path = tmp_path / "transacoes_big.csv"
    bad = write_transactions(path, ROWS)
    env = {
        **os.environ,
        "CONDO_DATABASE_URL": fresh_db.url(),
        "CONDO_SPARK_MASTER": "local[2]",
        "CONDO_SPARK_DIR": str(tmp_path / "spark"),
        "PYSPARK_PYTHON": sys.executable,
    }
    log = (tmp_path / "loader.log").open("w")
    process = subprocess.Popen(
        [sys.executable, str(PROJECT / "spark_loaders" / "load_files.py"), str(path)],
        cwd=PROJECT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 300
        while _copy_in_progress(fresh_db) < 50_000:
            assert process.poll() is None, (tmp_path / "loader.log").read_text()[-3000:]
            assert time.monotonic() < deadline, "the loader never started writing rows"
            time.sleep(0.1)
    finally:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()

    # Nothing of the file is visible, and the ledger has no entry for it.
    assert scalar(fresh_db, "select count(*) from bronze.transacoes") == 0
    assert scalar(fresh_db, "select count(*) from bronze.rejected_rows") == 0
    assert scalar(fresh_db, "select count(*) from ops.loads") == 0

    report = load(spark, path)
    result = report.files[0]
    assert (result.status, result.rows_read, result.rows_loaded, result.rows_rejected) == (
        "loaded",
        ROWS,
        ROWS - bad,
        bad,
    )
    assert rows(
        fresh_db,
        "select count(*), count(distinct transacao_id), min(transacao_id), max(transacao_id) from bronze.transacoes",
    ) == [(ROWS - bad, ROWS - bad, 1, ROWS)]
    assert scalar(fresh_db, "select count(*) from bronze.rejected_rows") == bad
    # The killed run's staging tables were dropped by the re-run; no lock is left behind.
    assert leftover_tables(fresh_db) == []
    assert scalar(fresh_db, "select count(*) from pg_locks where locktype = 'advisory'") == 0
