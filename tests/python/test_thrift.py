"""dbt through Spark's Thrift server (``--target spark_thrift``) over the catalog that the
loader's ``--target spark`` wrote: the loader runs and exits (Derby admits one process),
then ``condo thrift`` starts HiveThriftServer2 on 127.0.0.1 over the same warehouse and
metastore, and dbt builds through it with PyHive (the ``thrift`` extra). Gold must equal the
postgres build of the same rows, row for row and in its contract types."""

from __future__ import annotations

import signal
import socket
import subprocess
import time
from pathlib import Path

import pytest
from dbt_runner import PROJECT_ROOT, run_dbt
from spark_cluster import free_port
from test_dbt_spark import assert_gold_equals_postgres_build, spark_env

VENV_BIN = PROJECT_ROOT / ".venv" / "bin"
START_TIMEOUT = 300


def _wait_for_port(port: int, proc: subprocess.Popen, log: Path) -> None:
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"the Thrift server exited: {log.read_text()[-4000:]}")
        with socket.socket() as sock:
            sock.settimeout(1)
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(1)
    raise AssertionError(f"the Thrift server did not listen: {log.read_text()[-4000:]}")


@pytest.mark.slow
def test_dbt_build_through_the_thrift_server_matches_postgres(fresh_db, tmp_path: Path) -> None:
    spark_dir = tmp_path / "spark"
    env = spark_env(spark_dir)
    # 1. The loader writes bronze into the Spark catalog, then exits (releasing Derby).
    load = subprocess.run(
        [str(VENV_BIN / "condo"), "load", "--target", "spark", "--quiet",
         str(PROJECT_ROOT / "data" / "sample")],
        cwd=PROJECT_ROOT, env=env, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert load.returncode == 0, load.stdout[-4000:] + load.stderr[-4000:]

    # 2. The Thrift server over the same warehouse and metastore.
    port = free_port()
    log = tmp_path / "thrift.log"
    with log.open("wb") as out:
        server = subprocess.Popen(
            [str(VENV_BIN / "condo"), "thrift", "--port", str(port), "--master", "local[2]"],
            cwd=tmp_path, env=env, stdout=out, stderr=subprocess.STDOUT,
        )  # fmt: skip
    try:
        _wait_for_port(port, server, log)
        thrift_env = {
            "CONDO_SPARK_DIR": str(spark_dir),
            "CONDO_SPARK_THRIFT_HOST": "127.0.0.1",
            "CONDO_SPARK_THRIFT_PORT": str(port),
            "CONDO_DBT_THREADS": "4",  # the server takes concurrent sessions
        }
        build = run_dbt(
            ["build"], workdir=tmp_path / "thrift-run", target="spark_thrift",
            extra_env=thrift_env, check=False,
        )  # fmt: skip
        assert build.returncode == 0, build.stdout[-8000:] + build.stderr[-3000:]
    finally:
        if server.poll() is None:
            server.send_signal(signal.SIGTERM)
            try:
                server.wait(60)
            except subprocess.TimeoutExpired:
                server.kill()
                server.wait(10)
    # The server opened the loaders' catalog, not one of its own in its working directory.
    assert not (tmp_path / "metastore_db").exists()
    assert not (tmp_path / "spark-warehouse").exists()

    # 3. The postgres build of the same sample rows equals what the Thrift server built.
    assert_gold_equals_postgres_build(fresh_db, spark_dir / "warehouse", tmp_path / "pg-run")
