"""Shared fixtures: one real PostgreSQL server and one real SparkSession per test session.

The server is the embedded one, started in a temporary state directory so tests never
touch the user's ``.condo``; set ``CONDO_TEST_DATABASE_URL`` to run against an external
server instead. Each test that needs a clean slate asks for ``fresh_db``, which creates
a new database and points ``CONDO_DATABASE_URL`` at it for the duration of the test.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from pg_helpers import scratch_database
from spark_cluster import spark_cluster  # noqa: F401 (session fixture: a standalone cluster)

from spark_loaders import connection

PROJECT_ROOT = Path(__file__).resolve().parents[2]
SAMPLE_DIR = PROJECT_ROOT / "data" / "sample"


@pytest.fixture(scope="session")
def test_state_dir() -> Iterator[Path]:
    # Not under pytest's tmp_path root: pytest resets that root to mode 0700 whenever a
    # pytest session starts, which would lock out the embedded server's unprivileged
    # account (under root) in the middle of a run.
    state = Path(tempfile.mkdtemp(prefix="condo-test-state-"))
    previous = {k: os.environ.get(k) for k in ("CONDO_STATE_DIR", "CONDO_HOME")}
    os.environ["CONDO_STATE_DIR"] = str(state)
    os.environ["CONDO_HOME"] = str(PROJECT_ROOT)
    yield state
    for key, value in previous.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value
    shutil.rmtree(state, ignore_errors=True)


@pytest.fixture(scope="session")
def pg_server(test_state_dir: Path) -> Iterator[connection.ConnectionInfo]:
    """The PostgreSQL server for this test session (admin connection to its default db)."""
    external = os.environ.get("CONDO_TEST_DATABASE_URL")
    for key in ("CONDO_DATABASE_URL", "PGHOST"):
        os.environ.pop(key, None)
    if external:
        yield connection.from_url(external)
        return
    from spark_loaders import embedded_pg

    info = embedded_pg.ensure_running()
    yield info
    embedded_pg.stop()


@pytest.fixture
def fresh_db(pg_server: connection.ConnectionInfo, monkeypatch: pytest.MonkeyPatch):
    """A brand-new empty database; every project component resolves to it during the test."""
    with scratch_database(pg_server) as info:
        monkeypatch.setenv("CONDO_DATABASE_URL", info.url())
        yield info


@pytest.fixture(scope="session")
def spark(test_state_dir: Path):
    """The one SparkSession of the test session (local[2], Hive catalog in a temp dir)."""
    os.environ.setdefault("CONDO_SPARK_MASTER", "local[2]")
    os.environ.setdefault("CONDO_SHUFFLE_PARTITIONS", "4")
    from spark_loaders.spark_session import get_spark

    session = get_spark("condo-tests", hive=True)
    yield session
    session.stop()


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Every test that uses the shared SparkSession, directly or through another fixture, is
    marked ``spark``; a test that starts Spark only in a child process carries the mark
    itself. ``make test-fast`` deselects them (``-m "not slow and not spark"``)."""
    for item in items:
        if {"spark", "spark_cluster"} & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.spark)
