#!/bin/sh
# dbt as Cosmos calls it, with the database connection `condo` resolves
# (CONDO_DATABASE_URL, then PG*, else the embedded server, which it starts if needed).
#
# Cosmos always passes `--target <ProfileConfig.target_name>`; the DAG's `target` param
# reaches this script as CONDO_DBT_TARGET and replaces that value, so one rendered DAG
# serves both the postgres and the spark target.
set -eu
condo="${CONDO_BIN:-condo}"
if [ -n "${CONDO_DBT_TARGET:-}" ]; then
  n=$#
  replace_next=0
  while [ "$n" -gt 0 ]; do
    arg="$1"
    shift
    n=$((n - 1))
    if [ "$replace_next" = 1 ]; then
      arg="$CONDO_DBT_TARGET"
      replace_next=0
    elif [ "$arg" = "--target" ] || [ "$arg" = "-t" ]; then
      replace_next=1
    fi
    set -- "$@" "$arg"
  done
fi
exec "$condo" dbt "$@"
