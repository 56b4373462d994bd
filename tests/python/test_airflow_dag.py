"""End to end: the Airflow DAG ``condomanage_lakehouse`` run once with `airflow dags test`
(`make airflow-test`) against a real PostgreSQL, real Spark and real dbt (through Cosmos).

The success run is checked against the reports computed by hand from the CSV text
(``test_pipeline_e2e.expected_reports``), in PostgreSQL gold and in the Parquet output. The
failure run rejects a file whole and checks that the run stops at the load task and that
the failure callback posts its alert to an HTTP receiver on 127.0.0.1.
"""

from __future__ import annotations

import http.server
import json
import os
import re
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import ClassVar

import psycopg
import pytest
from pg_helpers import scratch_database
from test_pipeline_e2e import COLUMNS, expected_reports, read_parquet

pytestmark = pytest.mark.slow

PROJECT_ROOT = Path(__file__).resolve().parents[2]
SAMPLE_DIR = PROJECT_ROOT / "data" / "sample"
AIRFLOW_VENV = PROJECT_ROOT / ".venv-airflow"
STATE_LINE = re.compile(r"^\s{2}(\S+)\s+(\S+)\s+try (\d+)\s*$", re.MULTILINE)


@pytest.fixture(scope="module")
def airflow_env() -> Path:
    """The Airflow virtualenv (`make airflow`); .ci/run creates it before the tests."""
    if not (AIRFLOW_VENV / "bin" / "airflow").is_file():
        subprocess.run(["make", "airflow"], cwd=PROJECT_ROOT, check=True, timeout=900)
    return AIRFLOW_VENV


def run_dag(source: Path, out: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["make", "--no-print-directory", "airflow-test", f"SOURCE={source}", f"OUT={out}"],
        cwd=PROJECT_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=1500,
    )


def task_states(output: str) -> dict[str, tuple[str, int]]:
    """The table dag_test.sh prints after the run: task id -> (state, try number)."""
    return {m[1]: (m[2], int(m[3])) for m in STATE_LINE.finditer(output)}


def base_env(db_url: str) -> dict[str, str]:
    env = {**os.environ, "CONDO_DATABASE_URL": db_url, "CONDO_SPARK_MASTER": "local[2]"}
    for key in list(env):  # the run must not depend on the developer's Airflow settings
        if key.startswith(("AIRFLOW_VAR_", "AIRFLOW__")) or key in ("AIRFLOW_HOME", "PGHOST"):
            env.pop(key)
    return env


@pytest.fixture(scope="module")
def successful_run(airflow_env, pg_server, tmp_path_factory) -> Iterator[dict]:
    out = tmp_path_factory.mktemp("airflow-lake") / "gold"
    with scratch_database(pg_server, prefix="airflow_ok") as info:
        result = run_dag(SAMPLE_DIR, out, base_env(info.url()))
        with psycopg.connect(**info.psycopg_kwargs()) as conn:
            gold = {
                model: conn.execute(
                    f"select {', '.join(COLUMNS[model])} from gold.{model} order by 1, 2"
                ).fetchall()
                if result.returncode == 0
                else []
                for model in COLUMNS
            }
        yield {"result": result, "out": out, "gold": gold}


def test_the_dag_run_succeeds_with_one_task_per_model_and_its_tests(successful_run) -> None:
    result = successful_run["result"]
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-4000:]
    states = task_states(result.stdout)
    for task_id in ("wait_for_files", "load", "export", "monitor"):
        assert states[task_id][0] == "success", states
    # Cosmos rendered the dbt project: every gold model is a run task followed by a test task.
    for model in COLUMNS:
        assert states[f"dbt.{model}.run"][0] == "success", states
        assert states[f"dbt.{model}.test"][0] == "success", states
    dbt_tasks = [t for t in states if t.startswith("dbt.")]
    assert len(dbt_tasks) > 2 * len(COLUMNS)
    assert all(state == "success" for state, _ in states.values()), states


@pytest.mark.parametrize("model", list(COLUMNS))
def test_gold_in_postgres_equals_the_hand_computation(successful_run, model: str) -> None:
    assert successful_run["result"].returncode == 0
    rows = [
        tuple(str(v) if hasattr(v, "isoformat") else v for v in row)
        for row in successful_run["gold"][model]
    ]
    assert sorted(rows) == sorted(expected_reports()[model])


@pytest.mark.parametrize("model", list(COLUMNS))
def test_parquet_output_equals_the_hand_computation(successful_run, model: str) -> None:
    assert successful_run["result"].returncode == 0
    rows = read_parquet(successful_run["out"] / model, COLUMNS[model])
    normalised = [tuple(str(v) if hasattr(v, "isoformat") else v for v in row) for row in rows]
    assert normalised == expected_reports()[model]


class _Receiver(http.server.BaseHTTPRequestHandler):
    received: ClassVar[list[dict]] = []

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length", "0"))
        body = self.rfile.read(length)
        type(self).received.append(
            {"path": self.path, "type": self.headers.get("Content-Type"), "body": body}
        )
        self.send_response(200)
        self.end_headers()
        self.wfile.write(b"ok")

    def log_message(self, *args) -> None:  # keep pytest's output clean
        pass


@pytest.fixture
def webhook_receiver() -> Iterator[tuple[str, list[dict]]]:
    received: ClassVar[list[dict]] = []
    handler = type("Receiver", (_Receiver,), {"received": received})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/hooks/condo", received
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


def test_a_rejected_file_stops_the_run_at_load_and_the_callback_alerts(
    airflow_env, pg_server, tmp_path, webhook_receiver
) -> None:
    url, received = webhook_receiver
    source = tmp_path / "extract"
    source.mkdir()
    # No `endereco` column: the loader rejects the whole file and `condo load` exits 1.
    (source / "condominios.csv").write_text("nome\nsem endereco\n", encoding="utf-8")
    out = tmp_path / "lake"
    with scratch_database(pg_server, prefix="airflow_fail") as info:
        env = base_env(info.url())
        env["AIRFLOW_VAR_CONDO_ALERT_WEBHOOK_URL"] = url
        env["AIRFLOW_VAR_CONDO_TASK_RETRIES"] = "1"  # one retry, so the alert is try 2
        env["AIRFLOW_VAR_CONDO_RETRY_DELAY_SECONDS"] = "1"
        result = run_dag(source, out, env)
        with psycopg.connect(**info.psycopg_kwargs()) as conn:
            ledger = conn.execute("select status from ops.loads").fetchall()
            gold = conn.execute(
                "select count(*) from information_schema.schemata where schema_name = 'gold'"
            ).fetchone()[0]

    output = result.stdout + result.stderr
    assert result.returncode != 0, output[-4000:]
    states = task_states(result.stdout)
    assert states["wait_for_files"][0] == "success", states
    assert states["load"] == ("failed", 2), states
    downstream = {t: s for t, (s, _) in states.items() if t not in ("wait_for_files", "load")}
    assert downstream, states
    assert set(downstream.values()) <= {"upstream_failed", "none"}, states
    assert not out.exists()
    assert gold == 0
    assert ledger and {status for (status,) in ledger} == {"rejected"}

    # Exactly one alert: the final failure (a retry is not a failure).
    assert len(received) == 1, received
    assert received[0]["path"] == "/hooks/condo"
    assert received[0]["type"] == "application/json"
    payload = json.loads(received[0]["body"])
    assert payload["dag_id"] == "condomanage_lakehouse"
    assert payload["task_id"] == "load"
    assert payload["try_number"] == 2
    assert payload["log_url"].startswith("http")
    assert "condomanage_lakehouse.load" in payload["text"]
    assert payload["run_id"]
