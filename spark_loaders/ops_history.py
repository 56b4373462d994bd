"""Run history in PostgreSQL: what dbt did, what the export published, what was alerted.

Every object the monitoring path adds to the database is defined here. Where the job roles
exist, the administrator's bootstrap (:func:`spark_loaders.roles.apply`: the embedded
server's initialisation, ``condo db roles``) creates them all and grants each to the role
that writes it; each writer still calls :func:`ensure_history_schema` for its own objects,
which only creates what is missing (a single-superuser or un-bootstrapped database):

* ``ops.dbt_runs`` / ``ops.dbt_results``: one row per dbt invocation made through
  ``condo dbt`` or ``condo pipeline``, and one per node it ran (written by the dbt job);
* ``ops.exports``: one row per model published by ``condo export`` (the export job);
* ``ops.alert_state``: the last level ``condo monitor --notify`` delivered per check (the
  monitor);
* the ``audit`` schema, where dbt stores the rows flagged by warn-severity tests
  (``store_failures``; dbt itself creates the tables in it).

The writers here take a parsed ``run_results.json`` or the export's results; they never
decide anything. The monitor reads these tables (``spark_loaders.monitor.gather``).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psycopg

AUDIT_SCHEMA = "audit"

# One statement group per relation, so a job creates only what is missing: where the roles
# exist, the administrator's bootstrap (``roles.apply``) has created all of them and a job
# without CREATE on ``ops`` never runs DDL.
HISTORY_DDL: dict[str, str] = {
    "ops.dbt_runs": """
create table if not exists ops.dbt_runs (
    invocation_id text primary key,
    command text not null,
    target text,
    started_at timestamptz not null,
    finished_at timestamptz not null,
    status text not null check (status in ('success', 'warn', 'error')),
    exit_code integer,
    nodes integer not null default 0,
    dbt_version text
);
create index if not exists dbt_runs_by_command on ops.dbt_runs (command, finished_at);
""",
    "ops.dbt_results": """
create table if not exists ops.dbt_results (
    invocation_id text not null references ops.dbt_runs (invocation_id) on delete cascade,
    unique_id text not null,
    name text not null,
    resource_type text not null,
    status text not null,
    failures bigint,
    execution_seconds double precision,
    completed_at timestamptz,
    relation_name text,
    message text,
    primary key (invocation_id, unique_id)
);
create index if not exists dbt_results_by_name on ops.dbt_results (resource_type, name, status);
""",
    "ops.exports": """
create table if not exists ops.exports (
    export_id bigint generated always as identity primary key,
    manifest_id text not null,
    model text not null,
    rows bigint not null,
    files integer not null,
    bytes bigint not null,
    output_path text not null,
    dbt_invocation_id text,
    read_started_at timestamptz,
    exported_at timestamptz not null default now()
);
create index if not exists exports_by_model on ops.exports (model, exported_at);
""",
    "ops.alert_state": """
create table if not exists ops.alert_state (
    check_name text primary key,
    level text not null check (level in ('ok', 'warn', 'error')),
    message text,
    changed_at timestamptz not null,
    notified_at timestamptz not null
);
""",
}

# Serialises the DDL between processes starting at the same moment (the namespace spells
# "COND", as the loader's locks do; key 2 is this module's).
_DDL_LOCK = (0x434F4E44, 2)

HISTORY_RELATIONS = tuple(HISTORY_DDL)
# What each writer needs (dbt_results references dbt_runs, so they go together).
DBT_RELATIONS = ("ops.dbt_runs", "ops.dbt_results")
EXPORT_RELATIONS = ("ops.exports",)
ALERT_RELATIONS = ("ops.alert_state",)


def _missing(conn: psycopg.Connection, relations: Sequence[str], audit: bool) -> list[str]:
    rows = conn.execute(
        "select r from unnest(%s::text[]) as r where to_regclass(r) is null", (list(relations),)
    ).fetchall()
    missing = [r[0] for r in rows]
    if audit and _schema_missing(conn, AUDIT_SCHEMA):
        missing.append(AUDIT_SCHEMA)
    return missing


def _schema_missing(conn: psycopg.Connection, schema: str) -> bool:
    return conn.execute("select to_regnamespace(%s) is null", (schema,)).fetchone()[0]


def ensure_history_schema(
    conn: psycopg.Connection,
    relations: Sequence[str] = HISTORY_RELATIONS,
    *,
    audit: bool = True,
) -> None:
    """Create those of ``relations`` (and the ``audit`` schema, with ``audit``) that are
    missing. When everything exists it only reads the catalog, so a role without CREATE
    rights passes (the roles' bootstrap creates the objects, see ``spark_loaders.roles``);
    it creates only what is missing, so a writer needs CREATE on ``ops`` only on a database
    nobody bootstrapped. Call it on an idle connection: its transaction then commits on its
    own, whatever the caller does afterwards (a failed webhook post must not undo the table
    it reads next time)."""
    from spark_loaders.ingest.ddl import create_schemas_sql

    unknown = sorted(set(relations) - set(HISTORY_DDL))
    if unknown:
        raise ValueError(f"not a history relation: {', '.join(unknown)}")
    with conn.transaction():
        if not _missing(conn, relations, audit):
            return
        conn.execute("select pg_advisory_xact_lock(%s, %s)", _DDL_LOCK)
        missing = _missing(conn, relations, audit)  # another process may have made them
        schemas = ["ops"] + ([AUDIT_SCHEMA] if AUDIT_SCHEMA in missing else [])
        conn.execute(create_schemas_sql(*schemas))
        for relation in HISTORY_RELATIONS:  # in dependency order
            if relation in missing:
                conn.execute(HISTORY_DDL[relation])


# -- dbt ---------------------------------------------------------------------------------


def run_status(statuses: Iterable[str], exit_code: int | None = None) -> str:
    """The invocation's overall status from its nodes' statuses and dbt's exit code."""
    seen = set(statuses)
    if seen & {"error", "fail", "runtime error"} or (exit_code not in (None, 0)):
        return "error"
    if "warn" in seen:
        return "warn"
    return "success"


def _timestamp(value: Any) -> datetime | None:
    if not value:
        return None
    try:
        parsed = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _completed_at(result: Mapping[str, Any]) -> datetime | None:
    for timing in result.get("timing") or []:
        if timing.get("name") == "execute" and timing.get("completed_at"):
            return _timestamp(timing["completed_at"])
    return None


def node_name(unique_id: str) -> str:
    """``model.condomanage.stg_imoveis`` -> ``stg_imoveis``; a generic test's id ends with a
    hash (``test.condomanage.unique_stg_imoveis_imovel_id.5b1c...``), so its name is the
    third part, not the last."""
    parts = unique_id.split(".")
    if len(parts) < 3:
        return unique_id
    return parts[2] if parts[0] == "test" else parts[-1]


def result_rows(run_results: Mapping[str, Any]) -> list[dict[str, Any]]:
    """One row of ``ops.dbt_results`` per node in a parsed ``run_results.json``."""
    rows = []
    for result in run_results.get("results") or []:
        unique_id = str(result.get("unique_id", ""))
        if not unique_id:
            continue
        failures = result.get("failures")
        rows.append(
            {
                "unique_id": unique_id,
                "name": node_name(unique_id),
                "resource_type": unique_id.split(".", 1)[0],
                "status": str(result.get("status")),
                "failures": int(failures) if failures is not None else None,
                "execution_seconds": result.get("execution_time"),
                "completed_at": _completed_at(result),
                "relation_name": result.get("relation_name"),
                "message": (str(result["message"])[:2000] if result.get("message") else None),
            }
        )
    return rows


def read_run_results(path: Path) -> dict[str, Any] | None:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def record_dbt_run(
    conn: psycopg.Connection,
    run_results: Mapping[str, Any],
    *,
    started_at: datetime,
    finished_at: datetime,
    exit_code: int | None = None,
    target: str | None = None,
) -> str | None:
    """Store one invocation and its nodes; returns its id, or None without one. Idempotent:
    recording the same invocation twice keeps the first copy."""
    meta = run_results.get("metadata") or {}
    invocation = meta.get("invocation_id")
    if not invocation:
        return None
    args = run_results.get("args") or {}
    rows = result_rows(run_results)
    ensure_history_schema(conn, DBT_RELATIONS)
    with conn.transaction():
        inserted = conn.execute(
            "insert into ops.dbt_runs (invocation_id, command, target, started_at, finished_at,"
            " status, exit_code, nodes, dbt_version) values (%s, %s, %s, %s, %s, %s, %s, %s, %s)"
            " on conflict (invocation_id) do nothing returning invocation_id",
            (
                invocation,
                str(args.get("which") or "unknown"),
                args.get("target") or target,
                started_at,
                finished_at,
                run_status((r["status"] for r in rows), exit_code),
                exit_code,
                len(rows),
                meta.get("dbt_version"),
            ),
        ).fetchone()
        if inserted is None:
            return str(invocation)
        with conn.cursor() as cur:
            cur.executemany(
                "insert into ops.dbt_results (invocation_id, unique_id, name, resource_type,"
                " status, failures, execution_seconds, completed_at, relation_name, message)"
                " values (%(invocation_id)s, %(unique_id)s, %(name)s, %(resource_type)s,"
                " %(status)s, %(failures)s, %(execution_seconds)s, %(completed_at)s,"
                " %(relation_name)s, %(message)s)",
                [{**row, "invocation_id": invocation} for row in rows],
            )
    return str(invocation)


def record_dbt_run_file(
    path: Path,
    *,
    started_at: datetime,
    finished_at: datetime,
    exit_code: int | None = None,
    target: str | None = None,
    expected_invocation: str | None = None,
) -> str | None:
    """Record ``path`` (a ``run_results.json``) if this invocation wrote it: it must be newer
    than ``started_at`` (and carry ``expected_invocation`` when given). Opens its own
    connection to the resolved database."""
    try:
        if path.stat().st_mtime < started_at.timestamp() - 1:
            return None  # left by an earlier invocation: this one wrote no results
    except OSError:
        return None
    data = read_run_results(path)
    if data is None:
        return None
    invocation = (data.get("metadata") or {}).get("invocation_id")
    if expected_invocation and invocation != expected_invocation:
        return None
    from spark_loaders import connection

    info = connection.resolve("transformer")  # dbt's role writes its run records
    with psycopg.connect(**info.psycopg_kwargs()) as conn:
        return record_dbt_run(
            conn,
            data,
            started_at=started_at,
            finished_at=finished_at,
            exit_code=exit_code,
            target=target,
        )


# -- exports -----------------------------------------------------------------------------


def record_exports(conn: psycopg.Connection, exports: Sequence[Mapping[str, Any]]) -> None:
    """Store published models: each mapping has manifest_id, model, rows, files, bytes,
    output_path, dbt_invocation_id and read_started_at (when the export began reading gold:
    the data is at least that old, whatever time the files were published)."""
    if not exports:
        return
    ensure_history_schema(conn, EXPORT_RELATIONS, audit=False)
    with conn.transaction(), conn.cursor() as cur:
        cur.executemany(
            "insert into ops.exports (manifest_id, model, rows, files, bytes, output_path,"
            " dbt_invocation_id, read_started_at) values (%(manifest_id)s, %(model)s, %(rows)s,"
            " %(files)s, %(bytes)s, %(output_path)s, %(dbt_invocation_id)s,"
            " %(read_started_at)s)",
            [dict(e) for e in exports],
        )


def now_utc() -> datetime:
    return datetime.now(UTC)
