"""Gold is an enforced dbt contract: a model change that breaks it fails the build (on a
copy of the project, so the real one is never edited), and the built tables carry exactly
the types of docs/contracts.md. Also the dev-target schema rule of generate_schema_name."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import psycopg
import pytest
from dbt_bronze import create_postgres_bronze
from dbt_runner import DBT, PROJECT_ROOT

from spark_loaders.dbt_env import dbt_environment

pytestmark = pytest.mark.slow

GOLD_MODEL = "transacoes_por_condominio"


def contract_types() -> dict[str, dict[str, str]]:
    """The PostgreSQL types of the gold table in docs/contracts.md, per model."""
    text = (PROJECT_ROOT / "docs" / "contracts.md").read_text(encoding="utf-8")
    gold = text.split("## Gold", 1)[1]
    types: dict[str, dict[str, str]] = {}
    for model, columns in re.findall(r"\| `gold\.(\w+)` \| (.+?) \|", gold):
        types[model] = dict(re.findall(r"`(\w+) ([\w(),]+)`", columns))
    return types


def copy_project(dest: Path) -> Path:
    dest.mkdir(parents=True)
    for name in ("dbt_project.yml", "models", "macros", "seeds", "tests"):
        source = PROJECT_ROOT / name
        if source.is_dir():
            shutil.copytree(source, dest / name, ignore=shutil.ignore_patterns("python"))
        else:
            shutil.copy2(source, dest / name)
    return dest


def dbt(project: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = dbt_environment("postgres")
    env.update(
        {
            "DBT_PROFILES_DIR": str(PROJECT_ROOT / "profiles"),
            "DBT_USE_COLORS": "false",
            "DBT_SEND_ANONYMOUS_USAGE_STATS": "false",
        }
    )
    cmd = [str(DBT), *args, "--project-dir", str(project), "--target-path", "target"]
    return subprocess.run(
        cmd, cwd=project, env=env, capture_output=True, text=True, timeout=600, check=False
    )


def test_a_change_breaking_the_gold_contract_fails_the_build(fresh_db, tmp_path) -> None:
    create_postgres_bronze(fresh_db.psycopg_kwargs())
    project = copy_project(tmp_path / "project")
    intact = dbt(
        project,
        "build",
        "--select",
        f"+{GOLD_MODEL}",
        "--resource-type",
        "seed",
        "--resource-type",
        "model",
    )
    assert intact.returncode == 0, intact.stdout[-4000:]
    with psycopg.connect(**fresh_db.psycopg_kwargs()) as conn:
        built = conn.execute(
            "select column_name, format_type(a.atttypid, a.atttypmod) "
            "from information_schema.columns c "
            "join pg_attribute a on a.attrelid = ('gold.' || c.table_name)::regclass "
            "and a.attname = c.column_name "
            "where c.table_schema = 'gold' and c.table_name = %s order by c.ordinal_position",
            (GOLD_MODEL,),
        ).fetchall()
    spelled = {
        "integer": "integer",
        "bigint": "bigint",
        "date": "date",
    }
    expected = {
        column: spelled.get(t, t.replace("varchar", "character varying"))
        for column, t in contract_types()[GOLD_MODEL].items()
    }
    assert dict(built) == expected
    assert list(dict(built)) == list(expected)  # the contract's column order too

    sql = project / "models" / "gold" / f"{GOLD_MODEL}.sql"
    text = sql.read_text(encoding="utf-8")
    broken = text.replace(
        "cast(coalesce(totals.qtd_transacoes, 0) as bigint) as qtd_transacoes",
        "cast(coalesce(totals.qtd_transacoes, 0) as varchar(20)) as qtd_transacoes",
    )
    assert broken != text
    sql.write_text(broken, encoding="utf-8")
    failed = dbt(project, "run", "--select", GOLD_MODEL)
    assert failed.returncode != 0
    assert "contract" in failed.stdout and "qtd_transacoes" in failed.stdout

    renamed = text.replace("as valor_total\n    from condominios", "as valor\n    from condominios")
    assert renamed != text
    sql.write_text(renamed, encoding="utf-8")
    failed = dbt(project, "run", "--select", GOLD_MODEL)
    assert failed.returncode != 0
    assert "contract" in failed.stdout and "valor_total" in failed.stdout


def test_a_dev_target_gets_schemas_of_its_own(tmp_path) -> None:
    """A target other than the production ones never builds into silver/gold: its
    schemas are prefixed with its own schema, and one that names silver is refused."""
    profiles = tmp_path / "profiles"
    profiles.mkdir()
    text = (PROJECT_ROOT / "profiles" / "profiles.yml").read_text(encoding="utf-8")
    postgres = re.search(r"(?ms)^    postgres:\n(.*?)\n\n", text).group(1)
    dev = postgres.replace("schema: silver", "schema: dbt_alice")
    shared = postgres  # a dev target that forgot to change the schema
    text = text.replace(
        "  outputs:\n",
        f"  outputs:\n    dev:\n{dev}\n\n    careless:\n{shared}\n\n",
        1,
    )
    (profiles / "profiles.yml").write_text(text, encoding="utf-8")
    env = dbt_environment("postgres")
    env.update({"DBT_PROFILES_DIR": str(profiles), "DBT_USE_COLORS": "false"})

    def ls(target: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [
                str(DBT),
                "ls",
                "--target",
                target,
                "--resource-type",
                "model",
                "--output",
                "json",
                "--output-keys",
                "name schema",
                "--project-dir",
                str(PROJECT_ROOT),
                "--target-path",
                str(tmp_path / f"target_{target}"),
                "--log-path",
                str(tmp_path / "logs"),
            ],
            cwd=PROJECT_ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )

    def schemas(result: subprocess.CompletedProcess[str]) -> dict[str, str]:
        assert result.returncode == 0, result.stdout[-3000:]
        rows = [json.loads(line) for line in result.stdout.splitlines() if line.startswith("{")]
        return {row["name"]: row["schema"] for row in rows}

    prod = schemas(ls("postgres"))
    assert prod["transacoes_por_condominio"] == "gold"
    assert prod["stg_transacoes"] == "silver"
    dev_schemas = schemas(ls("dev"))
    assert dev_schemas["transacoes_por_condominio"] == "dbt_alice_gold"
    assert dev_schemas["stg_transacoes"] == "dbt_alice_silver"
    assert not set(dev_schemas.values()) & {"silver", "gold", "bronze", "ops", "audit"}
    careless = ls("careless")
    assert careless.returncode != 0
    assert "belongs to the production targets" in careless.stdout
