"""The embedded PostgreSQL server, driven through the real ``condo db`` CLI in subprocesses,
each test project in its own temporary state directory."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

PROJECT_ROOT = Path(__file__).resolve().parents[2]
CONDO = [sys.executable, "-m", "spark_loaders.cli"]


class Project:
    """A project checkout as a user would have it: its own state directory."""

    def __init__(self, state: Path) -> None:
        self.state = state
        self.env = {
            k: v
            for k, v in os.environ.items()
            if not k.startswith("PG") and k not in ("CONDO_DATABASE_URL",)
        }
        self.env.update(CONDO_STATE_DIR=str(state), CONDO_HOME=str(PROJECT_ROOT))

    def condo(self, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        done = subprocess.run(
            [*CONDO, *args], env=self.env, capture_output=True, text=True, timeout=180
        )
        if check and done.returncode != 0:
            raise AssertionError(f"condo {' '.join(args)} failed: {done.stderr}")
        return done

    def status(self) -> dict:
        """What ``condo db status --json`` reports minus ``source``, read in-process with
        the same code (the CLI is exercised once per project; each call costs seconds)."""
        from spark_loaders import embedded_pg

        previous = os.environ.get("CONDO_STATE_DIR")
        os.environ["CONDO_STATE_DIR"] = str(self.state)
        try:
            return embedded_pg.status()
        finally:
            if previous is None:
                del os.environ["CONDO_STATE_DIR"]
            else:
                os.environ["CONDO_STATE_DIR"] = previous

    def cli_status(self) -> tuple[int, dict]:
        done = self.condo("db", "status", "--json", check=False)
        return done.returncode, json.loads(done.stdout)

    def url(self) -> str:
        return self.condo("db", "url").stdout.strip()

    @property
    def pid_file(self) -> Path:
        return self.state / "pg" / "data" / "postmaster.pid"

    def postmaster_pid(self) -> int | None:
        try:
            return int(self.pid_file.read_text().split()[0])
        except (FileNotFoundError, IndexError, ValueError):
            return None

    def cleanup(self) -> None:
        self.condo("db", "stop", check=False)
        pid = self.postmaster_pid()
        if pid and _alive(pid) and str(self.state).encode() in _cmdline(pid):
            os.kill(pid, signal.SIGTERM)


def _cmdline(pid: int) -> bytes:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return b""


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return not Path(f"/proc/{pid}/stat").read_text().split(") ")[-1].startswith("Z")


@contextlib.contextmanager
def new_project(name: str) -> Iterator[Project]:
    """A project in a fresh directory outside pytest's temp root: pytest resets that root
    to mode 0700 whenever another session starts, which would lock the server account
    out of a data directory below it halfway through a test."""
    proj = Project(Path(tempfile.mkdtemp(prefix=f"condo-{name}-")))
    try:
        yield proj
    finally:
        proj.cleanup()
        shutil.rmtree(proj.state, ignore_errors=True)


@pytest.fixture(scope="module")
def project() -> Iterator[Project]:
    with new_project("project-a") as proj:
        yield proj


def test_start_status_url_stop(project: Project) -> None:
    code, before = project.cli_status()
    assert code == 3
    assert before["source"] == "embedded"
    assert before["running"] is False and before["initialised"] is False

    started = project.condo("db", "start")
    assert "running at postgresql://condo:***@127.0.0.1:" in started.stdout
    code, status = project.cli_status()
    assert code == 0 and status.pop("source") == "embedded"
    assert status["running"] is True
    assert status["data_directory"] == str(project.state / "pg" / "data")
    port, pid = status["port"], status["pid"]

    url = project.url()
    assert url.startswith("postgresql://condo:") and f"@127.0.0.1:{port}/condomanage" in url
    with psycopg.connect(url) as conn:
        assert conn.execute(
            "select current_setting('server_version_num')::int / 10000"
        ).fetchone() == (18,)
        assert conn.execute("select inet_server_addr()::text").fetchone() == ("127.0.0.1/32",)

    # idempotent: a second start finds the running server
    project.condo("db", "start")
    assert (project.status()["port"], project.status()["pid"]) == (port, pid)

    assert project.condo("db", "stop").stdout.strip() == "embedded PostgreSQL stopped"
    assert project.status()["running"] is False
    assert "was not running" in project.condo("db", "stop").stdout

    # a command that needs the database starts it, on the remembered port
    assert project.url() == url
    assert project.status() | {"pid": None} == status | {"pid": None}


def test_killed_server_leaves_a_stale_pid_file_that_does_not_block(project: Project) -> None:
    url = project.url()
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("create table if not exists survivor (x int)")
        conn.execute("insert into survivor values (42)")
    pid = project.postmaster_pid()
    assert pid is not None
    os.kill(pid, signal.SIGKILL)
    deadline = time.monotonic() + 10
    while _alive(pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not _alive(pid)
    assert project.pid_file.exists()  # the stale lock file is still there
    assert project.status()["running"] is False

    started = project.condo("db", "start")
    assert "running" in started.stdout
    new_pid = project.postmaster_pid()
    assert new_pid != pid and _alive(new_pid)
    with psycopg.connect(project.url()) as conn:
        assert conn.execute("select x from survivor").fetchall() == [(42,)]


def test_two_projects_run_side_by_side(project: Project) -> None:
    with new_project("project-b") as other:
        url_a, url_b = project.url(), other.url()
        a, b = project.status(), other.status()
        assert a["running"] and b["running"]
        assert a["port"] != b["port"]
        assert a["data_directory"] != b["data_directory"]
        assert a["pid"] != b["pid"]
        with psycopg.connect(url_a, autocommit=True) as conn:
            conn.execute("create table only_in_a (x int)")
        with psycopg.connect(url_b) as conn:
            assert conn.execute("select to_regclass('only_in_a')").fetchone() == (None,)
        # stopping one leaves the other running
        other.condo("db", "stop")
        assert project.status()["running"] is True
        with psycopg.connect(url_a) as conn:
            assert conn.execute("select 1").fetchone() == (1,)


def test_start_failure_says_why_on_one_line(project: Project) -> None:
    project.condo("db", "stop")
    version_file = project.state / "pg" / "data" / "PG_VERSION"
    original = version_file.read_text()
    version_file.write_text("99\n")
    try:
        failed = project.condo("db", "start", check=False)
        assert failed.returncode != 0
        assert "Traceback" not in failed.stderr
        assert failed.stderr.count("\n") == 1
        assert "did not start" in failed.stderr
        assert "incompatible" in failed.stderr  # PostgreSQL's own reason
        # commands that need the database report the same
        failed = project.condo("db", "url", check=False)
        assert failed.returncode != 0 and "did not start" in failed.stderr
    finally:
        version_file.write_text(original)
    assert "running" in project.condo("db", "start").stdout


def test_start_and_stop_refuse_an_external_database(project: Project) -> None:
    env = {**project.env, "PGHOST": "db.invalid", "PGPORT": "5432", "PGUSER": "me"}
    done = subprocess.run([*CONDO, "db", "start"], env=env, capture_output=True, text=True)
    assert done.returncode != 0 and done.stderr.count("\n") == 1
    assert "external database" in done.stderr and "db.invalid" in done.stderr
    done = subprocess.run(
        [*CONDO, "db", "status", "--json"], env=env, capture_output=True, text=True
    )
    assert json.loads(done.stdout)["source"] == "env"
