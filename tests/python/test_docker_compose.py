"""docker-compose.yml cannot run here (no Docker engine), so its structure is checked
instead: services, images, ports, healthchecks, credentials from the environment, volumes,
and that .env.example documents every variable it uses and configures the project's own
connection resolution to reach the same server."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from spark_loaders.connection import from_environment

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = ROOT / "docker-compose.yml"
ENV_EXAMPLE = ROOT / ".env.example"
SPARK_DOCKERFILE = ROOT / "docker" / "spark" / "Dockerfile"

# ${VAR}, ${VAR:-default}, ${VAR-default}, ${VAR:?error}, ${VAR?error}, $VAR; $$ escapes.
_VAR = re.compile(
    r"\$(?:\$|\{(?P<braced>[A-Za-z_][A-Za-z0-9_]*)(?P<op>:?[-?])?(?P<arg>[^}]*)\}"
    r"|(?P<bare>[A-Za-z_][A-Za-z0-9_]*))"
)


class MissingVariable(Exception):
    pass


def interpolate(value: object, env: dict[str, str]) -> object:
    """Compose's variable substitution, applied to every string of the parsed file."""
    if isinstance(value, dict):
        return {k: interpolate(v, env) for k, v in value.items()}
    if isinstance(value, list):
        return [interpolate(v, env) for v in value]
    if not isinstance(value, str):
        return value

    def substitute(match: re.Match[str]) -> str:
        if match.group(0) == "$$":
            return "$"
        name = match.group("braced") or match.group("bare")
        op, arg = match.group("op") or "", match.group("arg") or ""
        present = name in env
        empty = not env.get(name)
        if op in (":-", "-"):
            use_default = empty if op == ":-" else not present
            return arg if use_default else env[name]
        if op in (":?", "?"):
            if empty if op == ":?" else not present:
                raise MissingVariable(f"{name}: {arg}")
            return env[name]
        return env.get(name, "")

    return _VAR.sub(substitute, value)


def variables_used(text: str) -> set[str]:
    return {m.group("braced") or m.group("bare") for m in _VAR.finditer(text) if m.group(0) != "$$"}


def env_example(**overrides: str) -> dict[str, str]:
    """The variables of .env.example as `set -a; . ./.env` gives them to a shell (later
    lines expand earlier ``${VAR}``), with ``overrides`` replacing lines as they are read."""
    values: dict[str, str] = {}
    for line in ENV_EXAMPLE.read_text(encoding="utf-8").splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            key, _, value = line.partition("=")
            key = key.strip()
            values[key] = overrides.get(key, str(interpolate(value.strip(), values)))
    return values


PASSWORDS = {
    "POSTGRES_PASSWORD": "super-pw",
    "CONDO_LOADER_PASSWORD": "loader-pw",
    "CONDO_TRANSFORMER_PASSWORD": "transformer-pw",
    "CONDO_READER_PASSWORD": "reader-pw",
    "CONDO_MONITOR_PASSWORD": "monitor-pw",
}


def filled_env() -> dict[str, str]:
    """.env.example once the user has set the passwords it asks for."""
    return env_example(**PASSWORDS)


def documented_names() -> set[str]:
    """Variables .env.example names, set or commented out (``# PGSSLMODE=prefer``)."""
    text = ENV_EXAMPLE.read_text(encoding="utf-8")
    return set(re.findall(r"^#?\s*([A-Z][A-Z0-9_]*)=", text, flags=re.MULTILINE))


@pytest.fixture(scope="module")
def raw() -> dict:
    return yaml.safe_load(COMPOSE.read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def compose(raw: dict) -> dict:
    """The file as docker compose would see it with the values of a filled-in .env."""
    return interpolate(raw, filled_env())


def _published(port: str) -> tuple[str, str, str]:
    host_ip, host_port, container_port = port.rsplit(":", 2)
    return host_ip, host_port, container_port


def test_postgres_service(compose: dict) -> None:
    pg = compose["services"]["postgres"]
    assert pg["image"] == "postgres:18"
    assert pg["restart"] == "unless-stopped"
    env = filled_env()
    assert pg["environment"]["POSTGRES_USER"] == env["PGUSER"]
    assert pg["environment"]["POSTGRES_PASSWORD"] == env["POSTGRES_PASSWORD"] == env["PGPASSWORD"]
    assert pg["environment"]["POSTGRES_DB"] == env["PGDATABASE"]
    # published on the loopback interface, on the port clients are told to use
    assert [_published(p) for p in pg["ports"]] == [("127.0.0.1", env["PGPORT"], "5432")]


def test_postgres_healthcheck(compose: dict) -> None:
    check = compose["services"]["postgres"]["healthcheck"]
    assert check["test"][0] == "CMD-SHELL"
    assert "pg_isready" in check["test"][1]
    # $$ reaches the container as $, so the container's own variables are used
    assert '"${POSTGRES_USER}"' in check["test"][1]
    for key in ("interval", "timeout"):
        assert re.fullmatch(r"\d+s", check[key]), key
    assert check["retries"] >= 3


def test_postgres_data_lives_in_a_named_volume(compose: dict) -> None:
    mounts = compose["services"]["postgres"]["volumes"]
    assert mounts == ["pgdata:/var/lib/postgresql"]  # the PostgreSQL 18 image's VOLUME
    assert "pgdata" in compose["volumes"]


def test_credentials_come_from_the_environment(raw: dict) -> None:
    env = raw["services"]["postgres"]["environment"]
    assert env["POSTGRES_PASSWORD"].startswith("${POSTGRES_PASSWORD:?")
    for key in ("POSTGRES_USER", "POSTGRES_DB"):
        assert env[key].startswith("${"), key
    # nothing that looks like a literal password anywhere in the file
    text = COMPOSE.read_text(encoding="utf-8")
    assert not re.search(r"(?i)password\s*[:=]\s*[\"']?(?!\$\{)[A-Za-z0-9]", text)


def test_password_is_required_and_other_settings_have_local_defaults(raw: dict) -> None:
    with pytest.raises(MissingVariable, match="PASSWORD"):
        interpolate(raw, {})
    with pytest.raises(MissingVariable, match="POSTGRES_PASSWORD"):
        interpolate(raw, {"CONDO_LOADER_PASSWORD": "y"})
    # the example as shipped is refused: it has no password to accept
    with pytest.raises(MissingVariable, match="PASSWORD"):
        interpolate(raw, env_example())
    with pytest.raises(MissingVariable, match="CONDO_LOADER_PASSWORD"):
        interpolate(raw, {"POSTGRES_PASSWORD": "x"})
    minimal = {"POSTGRES_PASSWORD": "x", "CONDO_LOADER_PASSWORD": "y"}
    bare = interpolate(raw, minimal)
    pg = bare["services"]["postgres"]
    assert pg["environment"]["POSTGRES_USER"] == "condo"
    assert pg["environment"]["POSTGRES_DB"] == "condomanage"
    assert [_published(p) for p in pg["ports"]] == [("127.0.0.1", "5432", "5432")]
    moved = interpolate(raw, {**minimal, "PGPORT": "6543"})
    assert _published(moved["services"]["postgres"]["ports"][0])[1] == "6543"


def test_env_example_names_every_variable_the_compose_file_uses() -> None:
    used = variables_used(COMPOSE.read_text(encoding="utf-8"))
    assert {"PGUSER", "POSTGRES_PASSWORD", "CONDO_LOADER_PASSWORD", "PGDATABASE", "PGPORT"} <= used
    missing = used - documented_names()
    assert not missing, f".env.example does not mention {sorted(missing)}"


def test_env_example_points_the_project_at_the_compose_server(compose: dict) -> None:
    env = filled_env()
    info = from_environment(env)
    assert info is not None and info.source == "env"
    assert info.host in ("localhost", "127.0.0.1")
    pg = compose["services"]["postgres"]
    assert str(info.port) == _published(pg["ports"][0])[1]
    assert info.user == pg["environment"]["POSTGRES_USER"]
    assert info.password == pg["environment"]["POSTGRES_PASSWORD"]
    assert info.dbname == pg["environment"]["POSTGRES_DB"]
    # every job has its own role on the same server, with the password `condo db roles` sets
    for job in ("loader", "transformer", "reader", "monitor"):
        own = from_environment(env, job)
        assert own is not None and own.user == f"condo_{job}"
        assert own.password == env[f"CONDO_{job.upper()}_PASSWORD"]
        assert (own.host, own.port, own.dbname) == (info.host, info.port, info.dbname)
    # no password ships in the example
    for name in PASSWORDS:
        assert env_example()[name] == "", name
    ignored = (ROOT / ".gitignore").read_text(encoding="utf-8").splitlines()
    assert ".env" in ignored


def test_spark_cluster_services(compose: dict) -> None:
    services = compose["services"]
    master, worker, thrift = (services[n] for n in ("spark-master", "spark-worker", "spark-thrift"))
    for service in (master, worker, thrift):
        assert service["profiles"] == ["spark"]  # `docker compose up postgres` stays small
        assert service["build"]["dockerfile"] == "docker/spark/Dockerfile"
        assert "./:/opt/condo:ro" in service["volumes"]
        # inside the network the database is reached by service name, as the loader
        assert service["environment"]["PGHOST"] == "postgres"
        assert service["environment"]["PGPORT"] == "5432"
        assert service["environment"]["PGUSER"] == "condo_loader"
        assert service["environment"]["PGPASSWORD"] == PASSWORDS["CONDO_LOADER_PASSWORD"]
        assert PASSWORDS["POSTGRES_PASSWORD"] not in str(service)
    assert "org.apache.spark.deploy.master.Master" in master["command"]
    assert "org.apache.spark.deploy.worker.Worker" in worker["command"]
    assert worker["command"][-1] == "spark://spark-master:7077"
    assert "org.apache.spark.sql.hive.thriftserver.HiveThriftServer2" in thrift["command"]
    assert [_published(p)[2] for p in thrift["ports"]] == ["10000"]
    assert thrift["environment"]["HIVE_SERVER2_THRIFT_PORT"] == "10000"
    assert thrift["command"][-1] == "spark-internal"
    assert master["depends_on"]["postgres"]["condition"] == "service_healthy"
    assert worker["depends_on"]["spark-master"]["condition"] == "service_healthy"
    for service in (master, thrift):
        assert service["healthcheck"]["test"][0] == "CMD-SHELL"


def test_spark_image_matches_the_locked_pyspark(compose: dict) -> None:
    import pyspark

    version = pyspark.__version__
    base = compose["services"]["spark-master"]["build"]["args"]["SPARK_BASE_IMAGE"]
    assert base == f"apache/spark:{version}-python3"
    dockerfile = SPARK_DOCKERFILE.read_text(encoding="utf-8")
    assert f"ARG SPARK_BASE_IMAGE=apache/spark:{version}-python3" in dockerfile
    # the Python packages the jobs import are pinned to the versions in uv.lock
    lock = (ROOT / "uv.lock").read_text(encoding="utf-8")
    pins = re.findall(r'"(psycopg|pyarrow|numpy|rich)(?:\[\w+\])?==([^"]+)"', dockerfile)
    assert {package for package, _ in pins} == {"psycopg", "pyarrow", "numpy", "rich"}
    for package, spec in pins:
        locked = re.search(rf'\nname = "{package}"\nversion = "([^"]+)"', lock)
        assert locked and locked.group(1) == spec, package


def _compose_command() -> list[str] | None:
    """`docker compose` (v2) or Debian's `docker-compose` (1.29), whichever runs here.
    Neither needs a Docker engine for `config`."""
    candidates = [["docker", "compose"], ["docker-compose"]]
    for command in candidates:
        if shutil.which(command[0]) is None:
            continue
        probe = subprocess.run([*command, "version"], capture_output=True, check=False)
        if probe.returncode == 0:
            return command
    return None


def _profiles(raw: dict) -> list[str]:
    return sorted({p for service in raw["services"].values() for p in service.get("profiles", [])})


@pytest.mark.skipif(_compose_command() is None, reason="neither docker compose nor docker-compose")
def test_docker_compose_accepts_the_file(raw: dict, tmp_path: Path) -> None:
    """Compose itself accepts the file with every profile, and refuses it without the
    passwords (no engine needed). A private env file keeps a developer's .env out."""
    command = _compose_command()
    assert command is not None
    profiles = [arg for p in _profiles(raw) for arg in ("--profile", p)]
    assert "spark" in _profiles(raw)

    def config(values: dict[str, str]) -> subprocess.CompletedProcess[str]:
        env_file = tmp_path / "compose.env"
        env_file.write_text("".join(f"{k}={v}\n" for k, v in values.items()), encoding="utf-8")
        return subprocess.run(
            [*command, "--env-file", str(env_file), "-f", str(COMPOSE), *profiles, "config"],
            env={"PATH": "/usr/bin:/bin:/usr/local/bin"},
            capture_output=True,
            text=True,
            check=False,
            cwd=tmp_path,
        )

    done = config(filled_env())
    assert done.returncode == 0, done.stderr
    rendered = yaml.safe_load(done.stdout)
    assert rendered["services"]["postgres"]["environment"]["POSTGRES_PASSWORD"] == "super-pw"
    assert rendered["services"]["spark-master"]["environment"]["PGUSER"] == "condo_loader"
    refused = config(env_example())
    assert refused.returncode != 0
    assert "PASSWORD" in refused.stderr
