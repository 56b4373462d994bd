"""The CondoManage lakehouse pipeline as an Airflow 3 DAG: ``condomanage_lakehouse``.

wait_for_files (optional) -> load -> dbt (one task per model and per model's tests,
rendered by astronomer-cosmos from the dbt project) -> export -> monitor.

Every task calls the project through its ``condo`` CLI, so the database, Spark master and
per-job credentials come from the same environment variables as on the command line
(``CONDO_DATABASE_URL`` or ``PG*``, ``CONDO_SPARK_MASTER``, ...). See docs/orchestration.md.

Knobs (environment of the scheduler/dag processor and the workers):

- ``CONDO_HOME``: the project checkout (default: three levels above this file).
- ``CONDO_DBT_MANIFEST``: a dbt manifest.json to render the dbt tasks from (fast parsing);
  unset, Cosmos renders from ``dbt ls`` on the project.
- ``CONDO_BIN``: the ``condo`` executable (default: next to the Python running Airflow,
  else ``condo`` on ``PATH``); ``CONDO_DBT_BIN`` the ``dbt`` used to render the DAG
  (default: next to ``condo``).
- Airflow Variables (or ``AIRFLOW_VAR_<NAME>`` environment variables):
  ``condo_pipeline_schedule`` (cron or preset, ``none`` for manual runs only; default
  ``@daily``), ``condo_alert_webhook_url`` (where failures are posted; also read from
  ``CONDO_ALERT_WEBHOOK_URL``), ``condo_task_retries`` (default 2),
  ``condo_retry_delay_seconds`` (first retry delay, default 60, doubled each try),
  ``condo_wait_timeout_minutes`` (how long the optional file sensor waits, default 360).
"""

from __future__ import annotations

import glob
import logging
import os
import shlex
import shutil
import sys
from collections.abc import Mapping
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from airflow.sdk import DAG, Param, Variable, task
from cosmos import (
    DbtTaskGroup,
    ExecutionConfig,
    ProfileConfig,
    ProjectConfig,
    RenderConfig,
)
from cosmos.constants import ExecutionMode, InvocationMode, LoadMode, TestBehavior

log = logging.getLogger(__name__)

DAG_ID = "condomanage_lakehouse"
HERE = Path(__file__).resolve().parent


def _setting(name: str, default: str) -> str:
    """An Airflow Variable (which also reads ``AIRFLOW_VAR_<NAME>``), else ``default``."""
    try:
        value = Variable.get(name, default=None)
    except Exception:  # no metadata database reachable while parsing (e.g. a lint run)
        value = os.environ.get(f"AIRFLOW_VAR_{name.upper()}")
    return default if value in (None, "") else str(value)


def _project_root() -> Path:
    env = os.environ.get("CONDO_HOME")
    root = Path(env).resolve() if env else HERE.parents[2]
    if not (root / "dbt_project.yml").is_file():
        raise RuntimeError(
            f"{DAG_ID}: no dbt_project.yml in {root}; set CONDO_HOME to the project checkout"
        )
    return root


def _condo_bin() -> str:
    env = os.environ.get("CONDO_BIN")
    if env:
        return env
    beside = Path(sys.executable).parent / "condo"
    if beside.is_file():
        return str(beside)
    return shutil.which("condo") or "condo"


def _schedule(value: str) -> str | None:
    return None if value.strip().lower() in ("none", "manual", "off") else value.strip()


PROJECT = _project_root()
CONDO = _condo_bin()
DBT_RENDER_BIN = os.environ.get("CONDO_DBT_BIN") or str(Path(CONDO).parent / "dbt")
# A manifest built at deploy time (`condo dbt parse --target-path DIR`) makes parsing the
# DAG file fast; without it Cosmos runs `dbt ls` (cached in an Airflow Variable).
MANIFEST = os.environ.get("CONDO_DBT_MANIFEST") or None
SCHEDULE = _schedule(_setting("condo_pipeline_schedule", "@daily"))
RETRIES = int(_setting("condo_task_retries", "2"))
RETRY_DELAY = timedelta(seconds=float(_setting("condo_retry_delay_seconds", "60")))
WAIT_TIMEOUT = timedelta(minutes=float(_setting("condo_wait_timeout_minutes", "360")))

# What every task gets on top of the worker's own environment.
TASK_ENV = {"CONDO_HOME": str(PROJECT), "DBT_SEND_ANONYMOUS_USAGE_STATS": "false"}


def _webhook_url() -> str:
    return _setting("condo_alert_webhook_url", os.environ.get("CONDO_ALERT_WEBHOOK_URL", ""))


def failure_payload(context: Mapping[str, Any]) -> dict[str, Any]:
    """The alert for a task that failed for good: who, which try, where the log is."""
    ti = context["ti"]
    exception = context.get("exception")
    try_number = getattr(ti, "try_number", None)
    log_url = getattr(ti, "log_url", "")
    run_id = context.get("run_id") or getattr(ti, "run_id", "")
    text = (
        f":red_circle: Airflow task failed: {ti.dag_id}.{ti.task_id} "
        f"(run {run_id}, try {try_number})"
        + (f": {str(exception)[:300]}" if exception else "")
        + (f"\nLog: {log_url}" if log_url else "")
    )
    return {
        "source": "airflow",
        "status": "failed",
        "dag_id": ti.dag_id,
        "task_id": ti.task_id,
        "run_id": run_id,
        "try_number": try_number,
        "max_tries": getattr(ti, "max_tries", None),
        "log_url": log_url,
        "logical_date": str(context.get("logical_date") or ""),
        "exception": str(exception)[:2000] if exception else "",
        "text": text,
    }


def _post_with_project_python(url: str, payload: Mapping[str, Any]) -> None:
    """Airflow in an environment of its own (without the project): send through the
    project's notifier with the project's Python. The URL travels in the environment, not
    in argv, so it does not show in `ps`."""
    import json
    import subprocess

    python = str(Path(CONDO).parent / "python")
    code = (
        "import json, os, sys\n"
        "from spark_loaders.alerting.webhook import post_json\n"
        "post_json(os.environ['CONDO_ALERT_URL'], json.load(sys.stdin))\n"
    )
    result = subprocess.run(
        [python, "-c", code],
        input=json.dumps(payload, default=str),
        env={**os.environ, "CONDO_ALERT_URL": url},
        capture_output=True,
        text=True,
        timeout=60,
    )
    if result.returncode != 0:
        raise RuntimeError(result.stderr.strip().splitlines()[-1] if result.stderr else "failed")


def notify_failure(context: Mapping[str, Any]) -> None:
    """on_failure_callback: post the alert through the project's webhook notifier."""
    url = _webhook_url()
    payload = failure_payload(context)
    if not url:
        log.warning("no condo_alert_webhook_url configured; alert not sent: %s", payload["text"])
        return
    try:
        try:
            from spark_loaders.alerting.webhook import post_json
        except ImportError:
            _post_with_project_python(url, payload)
        else:
            post_json(url, payload)
    except Exception as exc:  # a lost alert must not hide the task's own failure
        log.error("failure alert not delivered: %s", exc)
    else:
        log.info("failure alert delivered for %s.%s", payload["dag_id"], payload["task_id"])


def _paths(value: Any) -> list[str]:
    items = value if isinstance(value, list) else [value]
    return [str(item) for item in items if str(item).strip()]


default_args = {
    "owner": "data-engineering",
    "retries": RETRIES,
    "retry_delay": RETRY_DELAY,
    "retry_exponential_backoff": True,
    "max_retry_delay": timedelta(minutes=30),
    "on_failure_callback": notify_failure,
}

with DAG(
    dag_id=DAG_ID,
    description="CSV extracts -> bronze (Spark) -> silver/gold (dbt) -> Parquet -> monitor",
    schedule=SCHEDULE,
    start_date=datetime(2026, 1, 1),
    catchup=False,
    max_active_runs=1,
    dagrun_timeout=timedelta(hours=6),
    default_args=default_args,
    doc_md=__doc__,
    tags=["condomanage", "dbt", "spark"],
    params={
        "source": Param(
            str(PROJECT / "data" / "sample"),
            type=["string", "array"],
            description="CSV files or directories to load (condo pipeline --source)",
        ),
        "out": Param(
            str(PROJECT / "data" / "lake" / "gold"),
            type="string",
            description="where the Parquet datasets go (condo pipeline --out)",
        ),
        "target": Param("postgres", enum=["postgres", "spark"], description="where bronze lives"),
        "wait_for_files": Param(
            False, type="boolean", description="wait until a *.csv is in the source first"
        ),
    },
) as dag:

    @task.sensor(task_id="wait_for_files", poke_interval=60, mode="reschedule", retries=0)
    def wait_for_files(params: dict[str, Any] | None = None) -> bool:
        """Passes at once unless ``wait_for_files``; then pokes until the landing source
        holds at least one CSV; fails after ``condo_wait_timeout_minutes`` (default 6 h)."""
        assert params is not None
        if not params["wait_for_files"]:
            return True
        for path in _paths(params["source"]):
            if Path(path).is_file() or glob.glob(os.path.join(glob.escape(path), "*.csv")):
                return True
        log.info("no CSV yet in %s", _paths(params["source"]))
        return False

    wait = wait_for_files.override(timeout=WAIT_TIMEOUT)()

    @task.bash(task_id="load", env=TASK_ENV, append_env=True)
    def load(params: dict[str, Any] | None = None) -> str:
        """`condo load`: exit 1 when a file is rejected whole, fails, or rejects too much."""
        assert params is not None
        return shlex.join([CONDO, "load", *_paths(params["source"]), "--target", params["target"]])

    dbt = DbtTaskGroup(
        group_id="dbt",
        project_config=ProjectConfig(dbt_project_path=PROJECT, manifest_path=MANIFEST),
        profile_config=ProfileConfig(
            profile_name="condomanage",
            target_name="postgres",
            profiles_yml_filepath=PROJECT / "profiles" / "profiles.yml",
        ),
        execution_config=ExecutionConfig(
            execution_mode=ExecutionMode.LOCAL,
            invocation_mode=InvocationMode.SUBPROCESS,
            dbt_executable_path=str(HERE / "condo_dbt.sh"),
        ),
        render_config=RenderConfig(
            load_method=LoadMode.DBT_MANIFEST if MANIFEST else LoadMode.DBT_LS,
            invocation_mode=InvocationMode.SUBPROCESS,
            dbt_executable_path=DBT_RENDER_BIN,
            test_behavior=TestBehavior.AFTER_EACH,
            should_detach_multiple_parents_tests=True,
            emit_datasets=False,
        ),
        operator_args={
            "install_deps": False,
            "append_env": True,
            "env": {
                **TASK_ENV,
                "CONDO_BIN": CONDO,
                "CONDO_DBT_TARGET": "{{ params.target }}",
            },
        },
    )

    @task.bash(task_id="export", env=TASK_ENV, append_env=True)
    def export(params: dict[str, Any] | None = None) -> str:
        assert params is not None
        return shlex.join([CONDO, "export", "--out", params["out"], "--target", params["target"]])

    @task.bash(task_id="monitor", env=TASK_ENV, append_env=True)
    def monitor() -> str:
        """`condo monitor`: exit 0 ok, 1 warn (logged, the task passes), 2 error (fails).
        With a webhook configured, monitor posts its own alert when it supports --notify."""
        url = _webhook_url()
        condo = shlex.quote(CONDO)
        notify = ""
        if url:
            from airflow.sdk.log import mask_secret

            mask_secret(url)  # webhook URLs carry their token: keep it out of logs and the UI
            notify = (
                f"if {condo} monitor --help | grep -q -- --notify; then "
                f"set -- --notify {shlex.quote(url)}; fi; "
            )
        return (
            f'set --; {notify}rc=0; {condo} monitor "$@" || rc=$?; '
            'if [ "$rc" -eq 1 ]; then echo "condo monitor: WARN (see above)"; exit 0; fi; '
            'exit "$rc"'
        )

    wait >> load() >> dbt >> export() >> monitor()
