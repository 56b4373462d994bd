"""User text in the output and the monitor's blind spots, through
the real CLI, a real PostgreSQL and real files."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def condo(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "spark_loaders.cli", *args],
        cwd=ROOT,
        env=env or dict(os.environ),
        capture_output=True,
        text=True,
        timeout=600,
    )


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.spark  # `condo load` in a child process starts Spark
def test_rich_markup_in_names_headers_and_errors_prints_literally(fresh_db, tmp_path) -> None:
    drop = tmp_path / "drop"
    drop.mkdir()
    (drop / "transacoes_[bold]x.csv").write_text(
        "imovel_id,morador_id,data_transacao,valor_transacao,[/],[link=x]\n1,1,2024-03-01,1.00,a,b\n"
    )
    (drop / "moradores_[link=x].csv").write_text("nome,[/]\nAna,1\n")
    loaded = condo("load", str(drop))
    assert "Traceback" not in loaded.stderr and "MarkupError" not in loaded.stderr, loaded.stderr
    assert loaded.returncode == 1, loaded.stdout + loaded.stderr  # one file rejected whole
    for text in ("transacoes_[bold]x.csv", "moradores_[link=x].csv", "[/]", "[link=x]"):
        assert text in loaded.stdout, text

    status = tmp_path / "none.json"
    checked = condo("monitor", "--stream-status", str(status))
    assert "Traceback" not in checked.stderr, checked.stderr
    assert checked.returncode == 2  # a rejected file is an error, not a crash (exit 1)
    assert "[/]" in checked.stdout


def test_monitor_with_the_database_down_exits_2_with_one_line(tmp_path) -> None:
    port = _free_port()
    env = {**os.environ, "CONDO_DATABASE_URL": f"postgresql://condo:pw@127.0.0.1:{port}/condo"}
    done = condo("monitor", env=env)
    assert done.returncode == 2, done.stdout + done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and f"127.0.0.1:{port}" in lines[0], done.stderr
    assert "pw" not in lines[0]


def test_monitor_never_starts_the_embedded_server(tmp_path) -> None:
    env = {
        k: v for k, v in os.environ.items() if k != "CONDO_DATABASE_URL" and not k.startswith("PG")
    }
    env["CONDO_STATE_DIR"] = str(tmp_path / "state")
    try:
        done = condo("monitor", env=env)
        assert done.returncode == 2, done.stdout + done.stderr
        assert len(done.stderr.strip().splitlines()) == 1, done.stderr
        assert "embedded database" in done.stderr
        started = condo("db", "status", env=env)
        assert "initialised     False" in started.stdout, started.stdout
        assert not (tmp_path / "state" / "pg" / "data").exists()
    finally:
        condo("db", "stop", env=env)  # in case a monitor did start it


def test_a_running_status_with_a_dead_process_is_an_error(fresh_db, tmp_path) -> None:
    gone = subprocess.Popen(["true"])
    gone.wait()
    status = tmp_path / "status.json"
    status.write_text(
        json.dumps(
            {
                "state": "running",
                "pid": gone.pid,
                "host": socket.gethostname(),
                "updated_at": datetime.now(UTC).isoformat(),
                "totals": {"batches": 3, "rows_loaded": 10},
            }
        )
    )
    done = condo("monitor", "--format", "json", "--stream-status", str(status))
    checks = {c["name"]: c for c in json.loads(done.stdout)["checks"]}
    assert checks["stream.process"]["level"] == "error"
    assert str(gone.pid) in checks["stream.process"]["message"]
    assert done.returncode == 2
