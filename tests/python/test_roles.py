"""Least-privilege roles through the real server: what each job's role may do works, what
it may not do fails with "permission denied"; `condo db roles`, `condo db url --role`,
`condo db psql`; the per-job connection variables; and the whole pipeline with every job
on its own role."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import psycopg
import pytest
from role_helpers import role_database, role_passwords

from spark_loaders import connection, embedded_pg, roles
from spark_loaders.commands import db as db_command
from spark_loaders.connection import ConnectionInfo
from spark_loaders.errors import CondoError
from spark_loaders.ingest.ddl import ensure_schema

PROJECT_ROOT = Path(__file__).resolve().parents[2]
SAMPLE_DIR = PROJECT_ROOT / "data" / "sample"
CONDO = [sys.executable, "-m", "spark_loaders.cli"]

BRONZE_ROW = (
    "insert into bronze.condominios "
    "(condominio_id, nome, endereco, _source_file, _source_line, _load_id) "
    "values (1, 'A', 'Rua X', 'f.csv', 2, 1)"
)


def run_sql(info: ConnectionInfo, statement: str) -> list[tuple]:
    with psycopg.connect(**info.psycopg_kwargs(), autocommit=True) as conn:
        cur = conn.execute(statement)
        return cur.fetchall() if cur.description else []


def denied(info: ConnectionInfo, statement: str) -> None:
    with pytest.raises(psycopg.errors.InsufficientPrivilege, match="permission denied"):
        run_sql(info, statement)


def snapshot(admin: ConnectionInfo) -> list:
    """Every role attribute, schema owner and ACL the roles module manages."""
    queries = [
        "select rolname, rolsuper, rolcreatedb, rolcreaterole, rolinherit, rolreplication, "
        "rolbypassrls, rolconnlimit, rolcanlogin from pg_roles where rolname like 'condo\\_%' "
        "order by 1",
        "select nspname, pg_get_userbyid(nspowner), nspacl::text from pg_namespace "
        "where nspname in ('bronze', 'bronze_loads', 'ops', 'silver', 'gold', 'audit', 'public') "
        "order by 1",
        "select pg_get_userbyid(defaclrole), defaclnamespace::regnamespace::text, "
        "defaclacl::text from pg_default_acl order by 1, 2",
        "select datacl::text from pg_database where datname = current_database()",
    ]
    return [run_sql(admin, q) for q in queries]


@pytest.fixture
def role_db(pg_server):
    with role_database(pg_server) as (admin, as_role):
        yield admin, as_role


def test_roles_are_unprivileged_and_reapplying_changes_nothing(role_db) -> None:
    admin, _ = role_db
    before = snapshot(admin)
    attributes = {row[0]: row[1:] for row in before[0]}
    assert set(attributes) >= {r.name for r in roles.ROLES.values()}
    for role in roles.ROLES.values():
        superuser, createdb, createrole, inherit, replication, bypassrls, limit, login = attributes[
            role.name
        ]
        assert not (superuser or createdb or createrole or inherit or replication or bypassrls)
        assert login and limit == role.connection_limit
    # PUBLIC may neither connect to the database nor create in schema public
    # (an ACL entry "=Tc/owner" is PUBLIC's)
    assert not any(e.startswith("=") for e in before[3][0][0].strip("{}").split(","))
    public_schema = next(row for row in before[1] if row[0] == "public")
    assert not any(
        e.startswith("=") and "C" in e.split("/")[0]
        for e in public_schema[2].strip("{}").split(",")
    )
    with psycopg.connect(**admin.psycopg_kwargs(), autocommit=True) as conn:
        assert roles.apply(conn, role_passwords(admin)) == []  # nothing created twice
    assert snapshot(admin) == before


def test_each_role_can_do_its_job_and_nothing_else(role_db) -> None:
    _, r = role_db
    loader, transformer, reader, monitor = (r[j] for j in connection.JOBS)

    # loader: creates and writes bronze and the ledger
    with psycopg.connect(**loader.psycopg_kwargs()) as conn:
        ensure_schema(conn)
    run_sql(loader, BRONZE_ROW)
    run_sql(loader, "insert into ops.id_watermarks (entity) values ('x')")
    # transformer: reads bronze and ops, builds silver and gold (and its ops run records)
    assert run_sql(transformer, "select count(*) from bronze.condominios") == [(1,)]
    run_sql(transformer, "select count(*) from ops.loads")
    run_sql(transformer, "create table silver.s as select * from bronze.condominios")
    run_sql(transformer, "create table gold.g as select condominio_id from silver.s")
    run_sql(transformer, "create table audit.a (x int)")
    # ... and writes its run history, which the bootstrap created
    run_sql(
        transformer,
        "insert into ops.dbt_runs (invocation_id, command, started_at, finished_at, status) "
        "values ('i1', 'build', now(), now(), 'success')",
    )
    # reader: gold, including tables created after the roles (default privileges)
    assert run_sql(reader, "select condominio_id from gold.g") == [(1,)]
    # monitor: reads the ledger, whoever wrote the ops table; writes its own alert state
    run_sql(monitor, "select count(*) from ops.loads")
    assert run_sql(monitor, "select count(*) from ops.dbt_runs") == [(1,)]
    run_sql(
        monitor,
        "insert into ops.alert_state values ('c', 'ok', null, now(), now()) "
        "on conflict (check_name) do update set level = 'warn'",
    )
    # ... and what the orphan check counts: silver, and the failures dbt stores in audit
    run_sql(monitor, "select count(*) from silver.s")
    run_sql(monitor, "select count(*) from audit.a")

    # the reader sees nothing but gold, and changes nothing
    for table in ("bronze.condominios", "bronze.rejected_rows", "silver.s", "ops.loads"):
        denied(reader, f"select * from {table}")
    denied(reader, "insert into gold.g values (2)")
    denied(reader, "create table gold.x (x int)")
    denied(reader, "create table public.x (x int)")
    # the loader creates or alters nothing in silver or gold, and cannot read them
    for schema in ("silver", "gold"):
        denied(loader, f"create table {schema}.x (x int)")
        denied(loader, f"create view {schema}.v as select 1 as x")
    denied(loader, "alter table gold.g add column y int")
    denied(loader, "alter table silver.s rename to t")
    denied(loader, "drop table gold.g")
    denied(loader, "select * from gold.g")
    # the transformer cannot write bronze or the load ledger
    denied(transformer, BRONZE_ROW)
    denied(transformer, "delete from bronze.condominios")
    denied(transformer, "insert into ops.id_watermarks (entity) values ('y')")
    denied(transformer, "update ops.loads set status = 'failed'")
    denied(transformer, "create table bronze.x (x int)")
    denied(transformer, "create table ops.x (x int)")
    denied(transformer, "delete from ops.dbt_runs")
    denied(transformer, "insert into ops.alert_state values ('c', 'ok', null, now(), now())")
    # the monitor reads ops only and writes only its own tables
    denied(monitor, "select * from bronze.condominios")
    denied(monitor, "select * from gold.g")
    denied(monitor, "delete from ops.loads")
    denied(monitor, "update ops.id_watermarks set high_water = 0")
    denied(monitor, "create table ops.x (x int)")
    denied(
        monitor,
        "insert into ops.exports (manifest_id, model, rows, files, bytes, "
        "output_path) values ('m', 'g', 0, 0, 0, '/x')",
    )
    denied(monitor, "insert into silver.s (condominio_id) values (2)")
    # nobody creates schemas (no CREATE on the database)
    for info in (loader, transformer, reader, monitor):
        denied(info, "create schema rogue")


def test_the_stream_prepares_its_tables_as_the_loader(role_db, monkeypatch) -> None:
    """`condo stream` resolves the loader's connection and creates the ledger and
    ops.stream_batches with it; the monitor can read the batches it records."""
    from spark_loaders.streaming.run import _connector, prepare_database

    _, r = role_db
    monkeypatch.delenv("CONDO_DATABASE_URL", raising=False)
    monkeypatch.delenv("PGHOST", raising=False)
    monkeypatch.setenv("CONDO_LOADER_URL", r["loader"].url())
    info = connection.resolve("loader")
    assert info.user == "condo_loader"
    prepare_database(_connector(info))
    assert run_sql(r["monitor"], "select count(*) from ops.stream_batches") == [(0,)]
    denied(r["transformer"], "delete from ops.stream_batches")


def test_objects_made_before_the_roles_are_handed_over(pg_server) -> None:
    """A database used as superuser until now (an older embedded server) keeps working
    once the roles exist: its bronze and ledger belong to the loader afterwards."""
    from pg_helpers import scratch_database

    with scratch_database(pg_server, "preroles") as admin:
        with psycopg.connect(**admin.psycopg_kwargs()) as conn:
            ensure_schema(conn)
        run_sql(admin, "create schema gold")
        run_sql(admin, "create table gold.old as select 1 as x")
        passwords = role_passwords(pg_server)
        with psycopg.connect(**admin.psycopg_kwargs(), autocommit=True) as conn:
            roles.apply(conn, passwords)
        loader = replace(admin, user="condo_loader", password=passwords["loader"])
        reader = replace(admin, user="condo_reader", password=passwords["reader"])
        run_sql(loader, BRONZE_ROW)
        assert run_sql(reader, "select x from gold.old") == [(1,)]
        owners = dict(
            run_sql(
                admin,
                "select schemaname || '.' || tablename, tableowner from pg_tables "
                "where schemaname in ('bronze', 'bronze_loads', 'ops', 'gold')",
            )
        )
        assert owners["bronze.condominios"] == "condo_loader"
        assert owners["bronze_loads.condominios_default"] == "condo_loader"
        assert owners["ops.loads"] == "condo_loader"
        assert owners["gold.old"] == "condo_transformer"


def test_an_embedded_state_dir_without_roles_gets_them_on_next_start(pg_server) -> None:
    if pg_server.source != "embedded":
        pytest.skip("about the embedded server")
    lay = embedded_pg.layout()
    meta = json.loads(lay.meta.read_text())
    for key in ("roles", "roles_version"):
        meta.pop(key, None)
    embedded_pg._write_meta(lay, meta)
    info = embedded_pg.ensure_running("reader")
    assert info.user == "condo_reader" and info.password
    assert run_sql(info, "select current_user") == [("condo_reader",)]
    saved = json.loads(lay.meta.read_text())
    assert set(saved["roles"]) == set(connection.JOBS)
    assert saved["roles_version"] == roles.VERSION
    for path in (lay.meta, lay.log):
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, path


def test_each_job_takes_its_own_url_then_the_shared_settings() -> None:
    env = {
        "CONDO_DATABASE_URL": "postgresql://admin:pw@db:5432/condo",
        "CONDO_READER_URL": "postgresql://condo_reader:r@bi-replica:5433/condo",
    }
    reader = connection.from_environment(env, "reader")
    assert reader is not None and (reader.host, reader.user) == ("bi-replica", "condo_reader")
    loader = connection.from_environment(env, "loader")
    assert loader is not None and loader.user == "admin"  # falls back
    pg = connection.from_environment({"PGHOST": "h", "PGUSER": "u"}, "monitor")
    assert pg is not None and (pg.host, pg.user) == ("h", "u")
    assert connection.from_environment({}, "transformer") is None  # embedded
    with pytest.raises(CondoError, match="CONDO_LOADER_URL must look like"):
        connection.from_environment({"CONDO_LOADER_URL": "mysql://x"}, "loader")


def test_psql_gets_the_password_only_through_a_private_passfile() -> None:
    info = ConnectionInfo("h", 5432, "condo_reader", "s3cr:et\\", "db", "url")
    with db_command.private_passfile(info) as passfile:
        assert passfile is not None
        assert stat.S_IMODE(passfile.stat().st_mode) == 0o600
        assert passfile.read_text() == "h:5432:db:condo_reader:s3cr\\:et\\\\\n"
        argv, env = db_command.psql_command(info, passfile, ["--", "-c", "select 1"])
        assert not any("s3cr" in arg for arg in argv)
        assert "PGPASSWORD" not in env and env["PGPASSFILE"] == str(passfile)
        assert argv[-2:] == ["-c", "select 1"]
    assert not passfile.exists()


def _condo(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run(
        [*CONDO, *args], cwd=PROJECT_ROOT, env=env, capture_output=True, text=True, timeout=120
    )


def test_db_roles_url_and_psql_against_an_external_server(pg_server) -> None:
    """`condo db roles` as the administrator named by CONDO_DATABASE_URL, with passwords
    from the environment; then `db url --role` and `db psql --role` as the reader."""
    from pg_helpers import scratch_database

    passwords = role_passwords(pg_server)
    with scratch_database(pg_server, "dbroles") as admin:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("CONDO_", "PG"))}
        env.update({"CONDO_DATABASE_URL": admin.url(), "CONDO_HOME": str(PROJECT_ROOT)})
        env.update({f"CONDO_{j.upper()}_PASSWORD": p for j, p in passwords.items()})
        done = _condo("db", "roles", env=env)
        assert done.returncode == 0, done.stderr
        assert "condo_reader" in done.stdout and "applied in" in done.stdout
        assert admin.password not in done.stdout
        reader = replace(admin, user="condo_reader", password=passwords["reader"])
        transformer = replace(admin, user="condo_transformer", password=passwords["transformer"])
        run_sql(transformer, "create table gold.g as select 7 as x")

        env["CONDO_READER_URL"] = reader.url()
        url = _condo("db", "url", "--role", "reader", env=env)
        assert url.returncode == 0, url.stderr
        assert url.stdout.strip() == replace(reader, password=None).url()
        assert passwords["reader"] not in url.stdout

        psql = _condo(
            "db", "psql", "--role", "reader", "--", "-At", "-c", "select x from gold.g", env=env
        )
        assert psql.returncode == 0, psql.stderr
        assert psql.stdout.strip() == "7"
        refused = _condo(
            "db", "psql", "--role", "reader", "--", "-c", "select * from ops.loads", env=env
        )
        assert "permission denied" in refused.stderr or "does not exist" in refused.stderr


@pytest.mark.slow
def test_the_pipeline_runs_with_every_job_on_its_own_role(pg_server, tmp_path) -> None:
    """`condo pipeline` and `condo monitor` with only the per-job URLs valid: the shared
    URL has a wrong password, so a job falling back to it would fail."""
    from test_pipeline_e2e import COLUMNS, expected_reports, read_parquet

    with role_database(pg_server, "rolepipe") as (admin, as_role):
        env = {k: v for k, v in os.environ.items() if not k.startswith(("CONDO_", "PG"))}
        env.update(
            {
                "CONDO_HOME": str(PROJECT_ROOT),
                "CONDO_STATE_DIR": str(tmp_path / "state"),
                "CONDO_SPARK_MASTER": "local[2]",
                "CONDO_DATABASE_URL": replace(admin, password="wrong").url(),
            }
        )
        for job, info in as_role.items():
            env[connection.job_url_variable(job)] = info.url()
        out = tmp_path / "gold"
        cmd = ["pipeline", "--source", str(SAMPLE_DIR), "--out", str(out)]
        done = subprocess.run(
            [*CONDO, *cmd], cwd=PROJECT_ROOT, env=env, capture_output=True, text=True, timeout=900
        )
        assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
        for model, columns in COLUMNS.items():
            actual = read_parquet(out / model, columns)
            rows = [tuple(str(v) if hasattr(v, "isoformat") else v for v in r) for r in actual]
            assert rows == expected_reports()[model], model

        monitor = _condo("monitor", "--format", "json", env=env)
        assert monitor.returncode in (0, 1), monitor.stderr
        checks = {c["name"]: c["level"] for c in json.loads(monitor.stdout)["checks"]}
        # the build and the export were recorded (as the transformer), so gold is fresh
        assert checks["dbt.build"] in ("ok", "warn")
        for model in COLUMNS:
            assert checks[f"freshness.gold.{model}"] == "ok", model
        assert run_sql(admin, "select count(distinct model) from ops.exports") == [(len(COLUMNS),)]
        assert "orphans.imoveis" in checks and "bronze_partitions.transacoes" in checks

        owners = dict(
            run_sql(
                admin,
                "select schemaname || '.' || tablename, tableowner from pg_tables "
                "where schemaname in ('bronze', 'ops', 'silver', 'gold')",
            )
        )
        assert owners["bronze.transacoes"] == owners["ops.loads"] == "condo_loader"
        assert owners["silver.transacoes"] == "condo_transformer"
        for model in COLUMNS:
            assert owners[f"gold.{model}"] == "condo_transformer"
        # dbt's grants: the reader may select every gold model, and nothing in silver
        reader = as_role["reader"]
        for model in COLUMNS:
            run_sql(reader, f"select count(*) from gold.{model}")
        denied(reader, "select * from silver.transacoes")
        grants = run_sql(
            admin,
            "select table_name from information_schema.role_table_grants "
            "where grantee = 'condo_reader' and table_schema = 'gold' "
            "and privilege_type = 'SELECT' order by 1",
        )
        assert [g[0] for g in grants] == sorted(COLUMNS)
