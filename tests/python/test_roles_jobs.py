"""Every job on its own role, on a fresh database, whichever job runs first: the loader
compacts bronze, the transformer records dbt runs and exports, the monitor runs
`condo monitor` (JSON, the compaction and orphan checks included) and remembers what
`--notify` delivered. The shared URL carries a wrong password, so a job that fell back to it
(the superuser) would fail."""

from __future__ import annotations

import json
import os
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import psycopg
import pytest
from monitoring_helpers import ROOT, condo, receiver
from role_helpers import role_database
from synthetic_loads import bulk_load, transactions_sql

from spark_loaders import connection, ops_history
from spark_loaders.connection import ConnectionInfo, Job
from spark_loaders.export.api import ExportResult, _record_history
from spark_loaders.ingest.ddl import ensure_schema


def run_sql(info: ConnectionInfo, statement: str) -> list[tuple]:
    with psycopg.connect(**info.psycopg_kwargs(), autocommit=True) as conn:
        cur = conn.execute(statement)
        return cur.fetchall() if cur.description else []


@pytest.fixture
def jobs(pg_server, tmp_path):
    """(admin, per-role connections, environment for a `condo` subprocess)."""
    with role_database(pg_server, "rolejobs") as (admin, as_role):
        env = {k: v for k, v in os.environ.items() if not k.startswith(("CONDO_", "PG"))}
        env.update(
            {
                "CONDO_HOME": str(ROOT),
                "CONDO_STATE_DIR": str(tmp_path / "state"),
                "CONDO_DATABASE_URL": replace(admin, password="wrong").url(),
            }
        )
        for job, info in as_role.items():
            env[connection.job_url_variable(job)] = info.url()
        yield admin, as_role, env


def use_env(monkeypatch, env: dict[str, str]) -> None:
    """This process resolves connections as the `condo` subprocesses do."""
    for key in list(os.environ):
        if key.startswith(("CONDO_", "PG")):
            monkeypatch.delenv(key)
    for key, value in env.items():
        if key.startswith("CONDO_"):
            monkeypatch.setenv(key, value)


def load_as_loader(loader: ConnectionInfo, count: int) -> list[int]:
    with psycopg.connect(**loader.psycopg_kwargs(), autocommit=True) as conn:
        ensure_schema(conn)
        return [
            bulk_load(
                conn,
                "transacoes",
                transactions_sql(1 + k * 100, 100, units=50, people=70),
                source_file=f"transacoes_{k}.csv",
            )
            for k in range(count)
        ]


def record_dbt_build(tmp_path: Path, invocation: str) -> str | None:
    started = datetime.now(UTC)
    path = tmp_path / f"{invocation}.json"
    path.write_text(
        json.dumps(
            {
                "metadata": {"invocation_id": invocation, "dbt_version": "1.11.0"},
                "args": {"which": "build", "target": "dev"},
                "results": [
                    {"unique_id": "model.condomanage.stg_imoveis", "status": "success"},
                    {"unique_id": "test.condomanage.orfaos_sao_reportados.1", "status": "warn"},
                ],
            }
        ),
        encoding="utf-8",
    )
    return ops_history.record_dbt_run_file(
        path, started_at=started, finished_at=datetime.now(UTC), exit_code=0
    )


def record_export(tmp_path: Path, manifest: str) -> None:
    result = ExportResult(
        "transacoes_por_condominio", tmp_path, 3, 1, 100, 1, 0.1, "postgres", manifest, None
    )
    _record_history([result])  # logs, never raises: the row is the evidence


def transformer_builds_silver(transformer: ConnectionInfo) -> None:
    """What dbt leaves for the orphan check: silver tables and stored test failures."""
    for entity in ("imoveis", "moradores", "transacoes"):
        run_sql(transformer, f"create table silver.{entity} as select 1 as id")
    run_sql(
        transformer,
        "create table audit.orfaos_sao_reportados as select 'imoveis'::text as entidade",
    )


def monitor(env: dict[str, str], tmp_path: Path, *extra: str) -> dict:
    done = condo(
        "monitor",
        "--format",
        "json",
        "--stream-status",
        str(tmp_path / "no-stream.json"),
        "--bronze-partitions-warn",
        "3",
        *extra,
        env=env,
        timeout=120,
    )
    assert done.returncode in (0, 1, 2), done.stdout[-2000:] + done.stderr[-2000:]
    return {c["name"]: c for c in json.loads(done.stdout)["checks"]}


def test_the_loader_compacts_bronze_and_the_monitor_sees_it(jobs, tmp_path) -> None:
    admin, r, env = jobs
    loads = load_as_loader(r["loader"], 3)

    before = monitor(env, tmp_path)
    assert before["bronze_partitions.transacoes"]["level"] == "warn"
    assert before["bronze_partitions.transacoes"]["value"] == 3

    done = condo("bronze", "compact", "--entity", "transacoes", "--older-than", "0", env=env)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    assert "merged 3 partitions (3 loads, 300 rows)" in done.stdout
    merged = run_sql(
        admin,
        "select c.relname, pg_get_userbyid(c.relowner) from pg_inherits i "
        "join pg_class c on c.oid = i.inhrelid "
        "where i.inhparent = 'bronze.transacoes'::regclass and c.relname like 'transacoes_m%'",
    )
    assert [owner for _, owner in merged] == ["condo_loader"]
    assert run_sql(admin, "select status, load_ids from ops.compactions") == [("compacted", loads)]

    after = monitor(env, tmp_path)
    assert after["bronze_partitions.transacoes"]["level"] == "ok"
    assert after["bronze_partitions.transacoes"]["value"] == 1
    assert after["compaction.transacoes"]["level"] == "ok"


@pytest.mark.parametrize("first", ["monitor", "transformer"])
def test_history_writers_and_the_monitor_in_either_order(
    jobs, tmp_path, monkeypatch, first: Job
) -> None:
    """Whichever job touches the run history first, the other can still write its part:
    the tables exist from the bootstrap and each writer holds its grant."""
    admin, r, env = jobs
    use_env(monkeypatch, env)
    load_as_loader(r["loader"], 1)

    def transformer_jobs() -> None:
        transformer_builds_silver(r["transformer"])
        assert record_dbt_build(tmp_path, "inv-1") == "inv-1"
        record_export(tmp_path, "manifest-1")

    with receiver() as hook:
        if first == "transformer":
            transformer_jobs()
        checks = monitor(env, tmp_path, "--notify", hook.url)
        assert hook.bodies, "the first run posts every check not ok"
        if first == "monitor":
            transformer_jobs()
            checks = monitor(env, tmp_path, "--notify", hook.url)

    assert checks["orphans.imoveis"]["value"] == pytest.approx(0.5)
    assert checks["dbt.build"]["level"] == "warn"
    assert checks["bronze_partitions.transacoes"]["value"] == 1
    stored = dict(run_sql(admin, "select check_name, level from ops.alert_state"))
    assert stored["orphans.imoveis"] == checks["orphans.imoveis"]["level"]
    assert stored["dbt.build"] == "warn"
    assert run_sql(admin, "select invocation_id, status, nodes from ops.dbt_runs") == [
        ("inv-1", "warn", 2)
    ]
    assert run_sql(admin, "select count(*) from ops.dbt_results") == [(2,)]
    assert run_sql(admin, "select manifest_id, rows from ops.exports") == [("manifest-1", 3)]
    owners = dict(
        run_sql(
            admin,
            "select tablename, tableowner from pg_tables where schemaname = 'ops' "
            "and tablename in ('dbt_runs', 'dbt_results', 'exports', 'alert_state')",
        )
    )
    assert owners == dict.fromkeys(
        ("dbt_runs", "dbt_results", "exports", "alert_state"), "condo_loader"
    )


def test_a_database_without_roles_gets_the_history_from_its_first_writer(
    pg_server, monkeypatch
) -> None:
    """A single superuser (no `condo db roles`): the writer creates what it needs, only that."""
    from pg_helpers import scratch_database

    with (
        scratch_database(pg_server, "noroles") as admin,
        psycopg.connect(**admin.psycopg_kwargs(), autocommit=True) as conn,
    ):
        ops_history.ensure_history_schema(conn, ops_history.EXPORT_RELATIONS, audit=False)
        present = conn.execute(
            "select r, to_regclass(r) is not null from unnest(%s::text[]) as r",
            (list(ops_history.HISTORY_RELATIONS),),
        ).fetchall()
        assert dict(present) == {
            "ops.dbt_runs": False,
            "ops.dbt_results": False,
            "ops.exports": True,
            "ops.alert_state": False,
        }
        ops_history.ensure_history_schema(conn)
        assert conn.execute(
            "select count(to_regclass(r)) from unnest(%s::text[]) as r",
            (list(ops_history.HISTORY_RELATIONS),),
        ).fetchone() == (4,)
        assert conn.execute("select to_regnamespace('audit') is not null").fetchone()[0]
