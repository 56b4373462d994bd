"""The shape of the DAG as Airflow parses it (no run): task order, one run and one test task
per dbt model, retries with exponential backoff and the failure callback on every task, the
schedule override. Parsed by the real Airflow in .venv-airflow, from a manifest that
`condo dbt parse` writes (the fast `CONDO_DBT_MANIFEST` path)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from test_airflow_dag import AIRFLOW_VENV, PROJECT_ROOT, airflow_env  # noqa: F401
from test_pipeline_e2e import COLUMNS

DAGS = PROJECT_ROOT / "orchestration" / "airflow" / "dags"

# Airflow parses the DAG in .venv-airflow, from a `condo dbt parse` manifest.
pytestmark = pytest.mark.slow

SHAPE = """
import json, sys
from airflow.dag_processing.dagbag import DagBag
bag = DagBag(dag_folder=sys.argv[1])
if bag.import_errors:
    raise SystemExit(json.dumps(bag.import_errors))
dag = bag.dags["condomanage_lakehouse"]
print(json.dumps({
    "schedule": dag.schedule,
    "max_active_runs": dag.max_active_runs,
    "catchup": dag.catchup,
    "params": dag.params.dump(),
    "tasks": {
        t.task_id: {
            "retries": t.retries,
            "backoff": t.retry_exponential_backoff,
            "callback": bool(t.on_failure_callback),
            "upstream": sorted(t.upstream_task_ids),
        }
        for t in dag.tasks
    },
}, default=str))
"""


@pytest.fixture(scope="module")
def manifest(tmp_path_factory, pg_server) -> Path:
    target = tmp_path_factory.mktemp("dbt-target")
    env = {**os.environ, "CONDO_DATABASE_URL": pg_server.url()}
    subprocess.run(
        [sys.executable, "-m", "spark_loaders.cli", "dbt", "parse", "--target-path", str(target)],
        cwd=PROJECT_ROOT,
        env=env,
        check=True,
        capture_output=True,
        timeout=600,
    )
    return target / "manifest.json"


def parse_dag(manifest: Path, tmp_path: Path, **extra: str) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW_VAR_", "AIRFLOW__"))}
    env.update(
        AIRFLOW_HOME=str(tmp_path),
        AIRFLOW__CORE__LOAD_EXAMPLES="False",
        AIRFLOW__CORE__DAGBAG_IMPORT_TIMEOUT="300",
        AIRFLOW__COSMOS__ENABLE_CACHE="False",
        AIRFLOW__COSMOS__ENABLE_TELEMETRY="False",
        CONDO_HOME=str(PROJECT_ROOT),
        CONDO_DBT_MANIFEST=str(manifest),
        **extra,
    )
    result = subprocess.run(
        [str(AIRFLOW_VENV / "bin" / "python"), "-c", SHAPE, str(DAGS)],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_dag_shape_retries_callback_and_default_schedule(
    airflow_env,  # noqa: F811
    manifest,
    tmp_path,
) -> None:
    dag = parse_dag(manifest, tmp_path)
    tasks = dag["tasks"]
    assert dag["schedule"] == "@daily"
    assert dag["max_active_runs"] == 1 and dag["catchup"] is False
    assert dag["params"]["source"] == str(PROJECT_ROOT / "data" / "sample")
    assert dag["params"]["out"] == str(PROJECT_ROOT / "data" / "lake" / "gold")
    assert dag["params"]["target"] == "postgres"
    # Order: sensor -> load -> dbt group -> export -> monitor.
    assert tasks["load"]["upstream"] == ["wait_for_files"]
    assert tasks["monitor"]["upstream"] == ["export"]
    assert all(t.startswith("dbt.") for t in tasks["export"]["upstream"])
    dbt_roots = [t for t, v in tasks.items() if t.startswith("dbt.") and "load" in v["upstream"]]
    assert dbt_roots
    for model in COLUMNS:
        assert tasks[f"dbt.{model}.test"]["upstream"] == [f"dbt.{model}.run"]
    # Every task but the sensor (which waits, it does not fail) retries with backoff.
    for task_id, task in tasks.items():
        assert task["callback"], task_id
        if task_id != "wait_for_files":
            assert task["retries"] == 2 and task["backoff"], task_id


def test_schedule_and_retries_come_from_variables(
    airflow_env,  # noqa: F811
    manifest,
    tmp_path,
) -> None:
    dag = parse_dag(
        manifest,
        tmp_path,
        AIRFLOW_VAR_CONDO_PIPELINE_SCHEDULE="15 3 * * *",
        AIRFLOW_VAR_CONDO_TASK_RETRIES="5",
    )
    assert dag["schedule"] == "15 3 * * *"
    assert dag["tasks"]["load"]["retries"] == 5
