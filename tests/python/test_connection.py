"""Connection resolution: embedded server versus CONDO_DATABASE_URL versus PG* variables.

Pure parsing is tested on plain dicts; the round trips (a percent-encoded password that
really authenticates, the CLI's one-line errors) go through the real server and CLI.
"""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from pathlib import Path

import psycopg
import pytest
from psycopg import sql

from spark_loaders import connection
from spark_loaders.connection import ConnectionInfo, from_environment, from_url
from spark_loaders.errors import CondoError

CONDO = [sys.executable, "-m", "spark_loaders.cli"]


def test_nothing_configured_means_embedded() -> None:
    assert from_environment({}) is None
    # libpq variables other than PGHOST do not switch away from the embedded server
    assert from_environment({"PGUSER": "x", "PGPASSWORD": "y", "PGPORT": "6000"}) is None


def test_url_wins_over_libpq_variables() -> None:
    info = from_environment(
        {"CONDO_DATABASE_URL": "postgresql://u:p@db.example:6543/warehouse", "PGHOST": "other"}
    )
    assert info == ConnectionInfo("db.example", 6543, "u", "p", "warehouse", "url")


def test_libpq_variables() -> None:
    info = from_environment(
        {
            "PGHOST": "pg.internal",
            "PGPORT": "5433",
            "PGUSER": "condo",
            "PGPASSWORD": "s3cret",
            "PGDATABASE": "condomanage",
            "PGSSLMODE": "require",
        }
    )
    assert info == ConnectionInfo(
        "pg.internal", 5433, "condo", "s3cret", "condomanage", "env", sslmode="require"
    )
    assert info.env() == {
        "PGHOST": "pg.internal",
        "PGPORT": "5433",
        "PGUSER": "condo",
        "PGPASSWORD": "s3cret",
        "PGDATABASE": "condomanage",
        "PGSSLMODE": "require",
    }
    assert info.jdbc_url() == "jdbc:postgresql://pg.internal:5433/condomanage?sslmode=require"
    assert info.jdbc_properties() == {
        "user": "condo",
        "password": "s3cret",
        "driver": "org.postgresql.Driver",
    }
    assert info.psycopg_kwargs()["sslmode"] == "require"


def test_libpq_defaults_when_only_host_is_set() -> None:
    info = from_environment({"PGHOST": "localhost"})
    assert (info.host, info.port, info.user, info.password, info.dbname) == (
        "localhost",
        5432,
        "postgres",
        None,
        "postgres",
    )
    assert "password" not in info.jdbc_properties()
    assert "password" not in info.psycopg_kwargs()


@pytest.mark.parametrize("port", ["abc", "", "0", "70000", "54 32", "-1", "٥٤٣٢"])
def test_invalid_pgport_is_a_condo_error(port: str) -> None:
    env = {"PGHOST": "localhost", "PGPORT": port}
    if port == "":
        assert from_environment(env).port == 5432  # empty means unset, as in libpq
        return
    with pytest.raises(CondoError, match="PGPORT"):
        from_environment(env)


def test_url_with_percent_encoded_password_and_defaults() -> None:
    info = from_url("postgresql://ana%40condo:p%40ss%2Fw%3Ard%20%25x@DB.example.com/cond%C3%B4")
    assert info.user == "ana@condo"
    assert info.password == "p@ss/w:rd %x"
    assert info.host == "db.example.com"
    assert info.port == 5432
    assert info.dbname == "condô"
    # url() quotes again, so parsing it gives the same thing back
    assert from_url(info.url()) == info
    assert "p%40ss" not in info.url(hide_password=True)
    assert "***" in info.url(hide_password=True)


def test_url_variants() -> None:
    assert from_url("postgres://bob@h").dbname == "bob"
    assert from_url("postgresql://h:5444/").user == "postgres"
    v6 = from_url("postgresql://u:p@[::1]:5433/d?sslmode=verify-full")
    assert (v6.host, v6.port, v6.sslmode) == ("::1", 5433, "verify-full")
    assert v6.url() == "postgresql://u:p@[::1]:5433/d?sslmode=verify-full"
    assert v6.jdbc_url() == "jdbc:postgresql://[::1]:5433/d?sslmode=verify-full"


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("mysql://u@h/d", "must look like"),
        ("postgresql:///dbname", "must look like"),
        ("postgresql://u@h:99999/d", "port"),
        ("postgresql://u@h:abc/d", "port"),
        ("postgresql://u@h/d?sslmode=sometimes", "sslmode"),
        ("postgresql://u@h/d?options=-csearch_path%3Dx", "unsupported parameter"),
    ],
)
def test_invalid_urls_are_condo_errors(url: str, message: str) -> None:
    with pytest.raises(CondoError, match=message):
        from_url(url)


def test_resolve_uses_the_environment_without_starting_anything(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CONDO_STATE_DIR", str(tmp_path / "state"))
    monkeypatch.delenv("CONDO_DATABASE_URL", raising=False)
    monkeypatch.setenv("PGHOST", "db.invalid")
    monkeypatch.setenv("PGPORT", "5499")
    info = connection.resolve()
    assert (info.source, info.host, info.port) == ("env", "db.invalid", 5499)
    assert not (tmp_path / "state").exists()  # no embedded server was initialised


def test_resolve_defaults_to_the_running_embedded_server(
    pg_server: ConnectionInfo, monkeypatch: pytest.MonkeyPatch
) -> None:
    if os.environ.get("CONDO_TEST_DATABASE_URL"):
        pytest.skip("the test session runs against an external server")
    monkeypatch.delenv("CONDO_DATABASE_URL", raising=False)
    monkeypatch.delenv("PGHOST", raising=False)
    info = connection.resolve()
    assert info.source == "embedded"
    assert info.host == "127.0.0.1"
    assert (info.port, info.user, info.dbname) == (pg_server.port, pg_server.user, "condomanage")
    with psycopg.connect(info.url()) as conn:
        assert conn.execute("select current_database()").fetchone() == ("condomanage",)


def test_awkward_password_authenticates_through_url_and_env(pg_server: ConnectionInfo) -> None:
    role = f"r_{uuid.uuid4().hex[:8]}"
    password = "p@ss:w/rd%20 ç?#&'\""
    with psycopg.connect(**pg_server.psycopg_kwargs(), autocommit=True) as conn:
        conn.execute(
            sql.SQL("create role {} login password {}").format(
                sql.Identifier(role), sql.Literal(password)
            )
        )
        # PUBLIC may not connect to the project's database (spark_loaders/roles.py)
        conn.execute(
            sql.SQL("grant connect on database {} to {}").format(
                sql.Identifier(pg_server.dbname), sql.Identifier(role)
            )
        )
    try:
        info = ConnectionInfo(
            pg_server.host, pg_server.port, role, password, pg_server.dbname, "url"
        )
        parsed = from_url(info.url())
        assert parsed.password == password
        with psycopg.connect(parsed.url()) as conn:
            assert conn.execute("select current_user").fetchone() == (role,)
        # the libpq variables that dbt receives authenticate as well
        env = {**os.environ, **parsed.env()}
        env.pop("CONDO_DATABASE_URL", None)
        done = subprocess.run(
            [*CONDO, "db", "url"], env=env, capture_output=True, text=True, check=True
        )
        assert from_url(done.stdout.strip()) == ConnectionInfo(
            parsed.host, parsed.port, role, password, parsed.dbname, "url"
        )
    finally:
        with psycopg.connect(**pg_server.psycopg_kwargs(), autocommit=True) as conn:
            conn.execute(
                sql.SQL("revoke connect on database {} from {}").format(
                    sql.Identifier(pg_server.dbname), sql.Identifier(role)
                )
            )
            conn.execute(sql.SQL("drop role {}").format(sql.Identifier(role)))


def test_cli_reports_bad_settings_in_one_line(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PG", "CONDO_DATABASE"))}
    env.update(PGHOST="localhost", PGPORT="fivefourthreetwo", CONDO_STATE_DIR=str(tmp_path))
    done = subprocess.run([*CONDO, "db", "url"], env=env, capture_output=True, text=True)
    assert done.returncode != 0
    assert done.stderr.count("\n") == 1 and "PGPORT" in done.stderr
    assert "Traceback" not in done.stderr
    env.pop("PGHOST")
    env["CONDO_DATABASE_URL"] = "mysql://root@localhost/condo"
    done = subprocess.run([*CONDO, "db", "status"], env=env, capture_output=True, text=True)
    assert done.returncode != 0
    assert done.stderr.count("\n") == 1 and "CONDO_DATABASE_URL" in done.stderr
