"""``condo db env``: plain dbt and libpq clients work with only what it prints.

The end-to-end test runs ``condo db env`` against a real server, then plain ``dbt build``
in a shell whose environment holds nothing but PATH, HOME and the printed lines.
"""

from __future__ import annotations

import datetime as dt
import os
import stat
import subprocess
import sys
from decimal import Decimal
from pathlib import Path

import dbt_bronze as bronze
import psycopg

from spark_loaders.connection import ConnectionInfo, from_environment, passfile_password
from spark_loaders.dbt_env import needs_database
from spark_loaders.shell_env import passfile_line, render, write_passfile

PROJECT_ROOT = Path(__file__).resolve().parents[2]
CONDO = [sys.executable, "-m", "spark_loaders.cli"]
VENV_BIN = str(Path(sys.executable).parent)


def test_passfile_round_trip_with_separators_in_the_password(tmp_path: Path) -> None:
    info = ConnectionInfo("db.example", 6543, "co:ndo", "p:a\\ss", "condomanage", "url")
    assert passfile_line(info) == "db.example:6543:*:co\\:ndo:p\\:a\\\\ss"
    path = write_passfile([info], tmp_path / "pgpass")
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    env = {"PGPASSFILE": str(path)}
    assert passfile_password(env, "db.example", 6543, "any_db", "co:ndo") == "p:a\\ss"
    assert passfile_password(env, "db.example", 6544, "any_db", "co:ndo") is None
    assert passfile_password(env, "other", 6543, "any_db", "co:ndo") is None


def test_libpq_variables_take_the_password_from_the_passfile(tmp_path: Path) -> None:
    info = ConnectionInfo("pg.internal", 5433, "condo", "s3cret", "condomanage", "env")
    path = write_passfile([info], tmp_path / "pgpass")
    env = {"PGHOST": "pg.internal", "PGPORT": "5433", "PGUSER": "condo", "PGPASSFILE": str(path)}
    env["PGDATABASE"] = "condomanage"
    assert from_environment(env) == info
    # PGPASSWORD, when set, wins, as in libpq
    assert from_environment({**env, "PGPASSWORD": "other"}).password == "other"


def test_render_quotes_values_and_unsets() -> None:
    text = render({"A": "x y", "B": None, "C": "it's"})
    assert text.splitlines() == ["export A='x y'", "unset B", "export C='it'\"'\"'s'"]


def test_which_dbt_commands_need_the_database() -> None:
    for offline in (["--version"], ["parse"], ["ls", "--select", "x"], ["build", "--help"], []):
        assert not needs_database(offline), offline
    for online in (["build"], ["-t", "postgres", "test"], ["docs", "generate"], ["debug"]):
        assert needs_database(online), online


def _db_env(extra: dict[str, str] | None = None) -> str:
    result = subprocess.run(
        [*CONDO, "db", "env"],
        cwd=PROJECT_ROOT,
        env={**os.environ, **(extra or {})},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


def _plain_shell(script: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    """``script`` in bash with an environment of PATH and HOME only."""
    env = {"PATH": f"{VENV_BIN}:/usr/local/bin:/usr/bin:/bin", "HOME": os.environ["HOME"]}
    return subprocess.run(
        ["bash", "-c", script], cwd=cwd, env=env, capture_output=True, text=True, timeout=900
    )


def test_plain_dbt_build_with_only_condo_db_env(fresh_db: ConnectionInfo, tmp_path: Path) -> None:
    conninfo = fresh_db.psycopg_kwargs()
    bronze.create_postgres_bronze(conninfo)
    now = dt.datetime.now(dt.UTC)
    bronze.insert_postgres(
        conninfo,
        [
            bronze.Load(
                1,
                now,
                {
                    "condominios": [(1, "Alpha", "Rua 1"), (2, "Beta", "Rua 2")],
                    "imoveis": [(10, "Casa", 1, Decimal("100.00"))],
                    "moradores": [(1, "Ana", 1, dt.date(2024, 1, 1))],
                    "transacoes": [
                        (100, 10, 1, dt.date(2024, 5, 1), Decimal("10.00")),
                        (101, 10, 1, dt.date(2024, 5, 2), Decimal("20.05")),
                    ],
                },
            )
        ],
    )

    printed = _db_env()
    assert fresh_db.password and fresh_db.password not in printed
    exports = dict(
        line.removeprefix("export ").split("=", 1)
        for line in printed.splitlines()
        if line.startswith("export ")
    )
    assert {"PGHOST", "PGPORT", "PGUSER", "PGDATABASE", "PGPASSFILE"} <= exports.keys()
    assert {"DBT_PROFILES_DIR", "CONDO_SPARK_DIR", "CONDO_DBT_TARGET"} <= exports.keys()
    assert "unset PGPASSWORD" in printed.splitlines()
    passfile = Path(exports["PGPASSFILE"].strip("'"))
    assert stat.S_IMODE(passfile.stat().st_mode) == 0o600

    env_file = tmp_path / "condo.env"
    env_file.write_text(printed, encoding="utf-8")
    # Not in the project directory: DBT_PROJECT_DIR, printed by `condo db env`, finds it.
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    result = _plain_shell(
        f'eval "$(cat {env_file})" && dbt build '
        f"--target-path {tmp_path / 'target'} --log-path {tmp_path / 'logs'}",
        outside,
    )
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]

    with psycopg.connect(**conninfo) as conn:
        rows = conn.execute(
            "select condominio_id, nome_condominio, qtd_transacoes, valor_total "
            "from gold.transacoes_por_condominio order by 1"
        ).fetchall()
    assert rows == [(1, "Alpha", 2, Decimal("30.05")), (2, "Beta", 0, Decimal("0.00"))]

    # libpq clients (psql, psycopg) authenticate through the password file as well.
    probe = _plain_shell(
        f'eval "$(cat {env_file})" && {sys.executable} -c '
        "\"import psycopg; print(psycopg.connect().execute('select current_user').fetchone()[0])\"",
        outside,
    )
    assert probe.returncode == 0, probe.stderr
    assert probe.stdout.strip() == fresh_db.user


def test_condo_dbt_parse_and_version_do_not_start_the_database(tmp_path: Path) -> None:
    state = tmp_path / "state"
    env = {
        key: value
        for key, value in os.environ.items()
        if key not in ("CONDO_DATABASE_URL", "PGHOST", "PGPASSWORD")
    }
    env.update(CONDO_STATE_DIR=str(state), CONDO_HOME=str(PROJECT_ROOT))
    for args in (["--version"], ["parse", "--target-path", str(tmp_path / "target")]):
        result = subprocess.run(
            [*CONDO, "dbt", *args], cwd=PROJECT_ROOT, env=env, capture_output=True, text=True
        )
        assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-2000:]
    assert not (state / "pg").exists(), "condo dbt started the embedded database"


def test_condo_version_names_the_main_packages() -> None:
    result = subprocess.run([*CONDO, "--version"], capture_output=True, text=True, check=True)
    from importlib import metadata

    assert f"condomanage-lakehouse) {metadata.version('condomanage-lakehouse')}" in result.stdout
    for name in ("dbt-core", "dbt-postgres", "dbt-spark", "pyspark", "psycopg"):
        assert f"{name:18} {metadata.version(name)}" in result.stdout
