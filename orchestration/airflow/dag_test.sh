#!/usr/bin/env bash
# Run the condomanage_lakehouse DAG once, end to end, with `airflow dags test`:
#   orchestration/airflow/dag_test.sh [SOURCE] [OUT] [TARGET]      (make airflow-test)
# Airflow's metadata lives in a throw-away AIRFLOW_HOME (SQLite). The pipeline's database is
# whatever `condo` resolves: CONDO_DATABASE_URL, else the PG* variables, else the embedded
# server. Exits non-zero when any task fails (Airflow marks the run failed).
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
venv="${CONDO_AIRFLOW_VENV:-$root/.venv-airflow}"
source_dir="${1:-$root/data/sample}"
out_dir="${2:-$root/data/lake/gold}"
target="${3:-postgres}"
[ -x "$venv/bin/airflow" ] || { echo "airflow-test: no Airflow in $venv; run 'make airflow'" >&2; exit 2; }
[ -e "$source_dir" ] || { echo "airflow-test: source does not exist: $source_dir" >&2; exit 2; }

home="$(mktemp -d "${TMPDIR:-/tmp}/condo-airflow-XXXXXX")"
keep="${CONDO_AIRFLOW_KEEP_HOME:-}"
cleanup() { if [ -z "$keep" ]; then rm -rf "$home"; else echo "AIRFLOW_HOME kept: $home"; fi; }
trap cleanup EXIT

export AIRFLOW_HOME="$home"
export AIRFLOW__CORE__DAGS_FOLDER="$root/orchestration/airflow/dags"
export AIRFLOW__CORE__LOAD_EXAMPLES=False
export AIRFLOW__DATABASE__SQL_ALCHEMY_CONN="sqlite:///$home/airflow.db"
export AIRFLOW__CORE__DAGBAG_IMPORT_TIMEOUT="${AIRFLOW__CORE__DAGBAG_IMPORT_TIMEOUT:-300}"
export CONDO_HOME="$root"
# No phoning home from a test run: Cosmos and Airflow usage telemetry off.
export AIRFLOW__COSMOS__ENABLE_TELEMETRY=False
export AIRFLOW__USAGE_DATA_COLLECTION__ENABLED=False
export DO_NOT_TRACK=1 SCARF_ANALYTICS=false
export DBT_SEND_ANONYMOUS_USAGE_STATS=false
export PATH="$venv/bin:$PATH"

abs() { python3 -c 'import os, sys; print(os.path.abspath(sys.argv[1]))' "$1"; }
conf="$(python3 -c 'import json, sys; print(json.dumps({"source": sys.argv[1], "out": sys.argv[2], "target": sys.argv[3]}))' \
  "$(abs "$source_dir")" "$(abs "$out_dir")" "$target")"

echo "==> airflow db migrate (metadata in $home)"
"$venv/bin/airflow" db migrate >"$home/migrate.log" 2>&1 || { cat "$home/migrate.log" >&2; exit 1; }
echo "==> airflow dags test condomanage_lakehouse --conf '$conf'"
rc=0
"$venv/bin/airflow" dags test condomanage_lakehouse --conf "$conf" || rc=$?
echo "==> task states"
"$venv/bin/python" - <<'PY' || true
import sqlite3, os
db = sqlite3.connect(os.path.join(os.environ["AIRFLOW_HOME"], "airflow.db"))
for task_id, state, tries in db.execute(
    "select task_id, state, try_number from task_instance where dag_id = 'condomanage_lakehouse' order by start_date is null, start_date, task_id"
):
    print(f"  {task_id:60} {state or 'none':16} try {tries}")
PY
if [ "$rc" -ne 0 ]; then
  echo "airflow-test: the DAG run failed (exit $rc)" >&2
fi
exit "$rc"
