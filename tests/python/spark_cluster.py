"""A real Spark standalone cluster for the tests: one master and one worker on 127.0.0.1,
started from the venv's pyspark (``bin/spark-class``), each with its own work and log
directories, and stopped by their own pids. One per test session (``spark_cluster``).

docker-compose's ``spark`` profile starts the same two daemons with the same arguments
(see ``docker-compose.yml``); :func:`daemon_command` is the single place they are spelled.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

MASTER_CLASS = "org.apache.spark.deploy.master.Master"
WORKER_CLASS = "org.apache.spark.deploy.worker.Worker"
WORKER_CORES = "2"
WORKER_MEMORY = "2g"  # the machine is shared: one executor of 1g fits
START_TIMEOUT = 180


def spark_home() -> Path:
    import pyspark

    return Path(pyspark.__file__).resolve().parent


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def daemon_command(
    kind: str,
    *,
    host: str = "127.0.0.1",
    port: int,
    ui_port: int,
    master_url: str = "",
    cores: str = WORKER_CORES,
    memory: str = WORKER_MEMORY,
    spark_class: str | None = None,
) -> list[str]:
    """The command line of a standalone daemon, in the order docker-compose spells it."""
    spark_class = spark_class or str(spark_home() / "bin" / "spark-class")
    if kind == "master":
        return [spark_class, MASTER_CLASS, "--host", host, "--port", str(port),
                "--webui-port", str(ui_port)]  # fmt: skip
    return [spark_class, WORKER_CLASS, "--host", host, "--port", str(port),
            "--webui-port", str(ui_port), "--cores", cores, "--memory", memory,
            master_url]  # fmt: skip


@dataclass
class Cluster:
    url: str
    base: Path
    env: dict[str, str]  # what a driver process needs to reach the cluster

    def log_tail(self) -> str:
        parts = []
        for log in sorted(self.base.glob("*.log")):
            parts.append(f"--- {log.name}\n" + log.read_text(errors="replace")[-3000:])
        return "\n".join(parts)


def _wait_for(predicate, what: str, procs: list[subprocess.Popen], base: Path) -> None:
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if predicate():
            return
        for proc in procs:
            if proc.poll() is not None:
                raise RuntimeError(f"{what}: a daemon exited with {proc.returncode}")
        time.sleep(0.5)
    raise RuntimeError(f"timed out waiting for {what}")


def _stop(proc: subprocess.Popen) -> None:
    if proc.poll() is not None:
        return
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(30)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(10)


def cluster_env(base: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "PYSPARK_GATEWAY_PORT"}
    env.update(
        SPARK_HOME=str(spark_home()),
        SPARK_LOCAL_IP="127.0.0.1",
        SPARK_LOG_DIR=str(base / "logs"),
        SPARK_WORKER_DIR=str(base / "work"),
        SPARK_LOCAL_DIRS=str(base / "tmp"),
        SPARK_PID_DIR=str(base),
        PYSPARK_PYTHON=sys.executable,
        PYSPARK_DRIVER_PYTHON=sys.executable,
        PATH=f"{Path(sys.executable).parent}:{env.get('PATH', '')}",
    )
    return env


def _start_daemon(
    name: str,
    command: list[str],
    ready: bytes,
    env: dict[str, str],
    procs: list[subprocess.Popen],
    base: Path,
) -> None:
    """Start one daemon, logging to ``<base>/<name>.log``, and wait for its ready line."""
    log = base / f"{name}.log"
    with log.open("wb") as out:  # the child keeps its own handle
        procs.append(
            subprocess.Popen(command, env=env, stdout=out, stderr=subprocess.STDOUT, cwd=base)
        )
    _wait_for(lambda: ready in log.read_bytes(), f"the Spark {name}", procs, base)


@contextlib.contextmanager
def start_cluster() -> Iterator[Cluster]:
    """Start a master and a worker; stop them (by pid) and remove their dirs on exit."""
    base = Path(tempfile.mkdtemp(prefix="condo-cluster-"))
    for sub in ("logs", "work", "tmp"):
        (base / sub).mkdir()
    env = cluster_env(base)
    master_port = free_port()
    url = f"spark://127.0.0.1:{master_port}"
    procs: list[subprocess.Popen] = []
    try:
        _start_daemon(
            "master",
            daemon_command("master", port=master_port, ui_port=free_port()),
            b"I have been elected leader",
            env,
            procs,
            base,
        )
        _start_daemon(
            "worker",
            daemon_command("worker", port=free_port(), ui_port=free_port(), master_url=url),
            b"Successfully registered with master",
            env,
            procs,
            base,
        )
        driver_env = {
            **env,
            "CONDO_SPARK_MASTER": url,
            "CONDO_SPARK_DRIVER_MEMORY": "1g",
            "CONDO_SPARK_EXECUTOR_MEMORY": "1g",
        }
        yield Cluster(url, base, driver_env)
    finally:
        for proc in reversed(procs):
            _stop(proc)
        shutil.rmtree(base, ignore_errors=True)


@pytest.fixture(scope="session")
def spark_cluster() -> Iterator[Cluster]:
    with start_cluster() as cluster:
        yield cluster
