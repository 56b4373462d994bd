"""docker-compose's Spark services run what the tests run: the standalone daemons as the
``spark_cluster`` fixture starts them, and the Thrift server as ``condo thrift`` starts it
(over the warehouse and metastore of the loaders' ``--target spark``)."""

from __future__ import annotations

from pathlib import Path

import yaml
from spark_cluster import daemon_command
from test_docker_compose import COMPOSE, filled_env, interpolate

from spark_loaders.thrift_server import server_command

SPARK = "/opt/spark"
STATE = Path("/opt/spark/work-dir/condo")  # CONDO_STATE_DIR of the compose services


def _services() -> dict:
    raw = yaml.safe_load(COMPOSE.read_text(encoding="utf-8"))
    return interpolate(raw, filled_env())["services"]


def test_master_and_worker_match_the_test_cluster() -> None:
    services = _services()
    env = filled_env()
    assert services["spark-master"]["command"] == daemon_command(
        "master", host="spark-master", port=7077, ui_port=8080,
        spark_class=f"{SPARK}/bin/spark-class",
    )  # fmt: skip
    assert services["spark-worker"]["command"] == daemon_command(
        "worker", host="spark-worker", port=7078, ui_port=8081,
        master_url="spark://spark-master:7077", cores=env["SPARK_WORKER_CORES"],
        memory=env["SPARK_WORKER_MEMORY"], spark_class=f"{SPARK}/bin/spark-class",
    )  # fmt: skip
    # The loaders in the master container keep their Spark catalog where the server reads it.
    assert services["spark-master"]["environment"]["CONDO_STATE_DIR"] == str(STATE)


def test_thrift_service_runs_what_condo_thrift_runs(monkeypatch) -> None:
    monkeypatch.setenv("SPARK_HOME", SPARK)
    for key in ("CONDO_SPARK_DRIVER_MEMORY", "CONDO_SPARK_UI", "CONDO_SHUFFLE_PARTITIONS"):
        monkeypatch.delenv(key, raising=False)
    expected = server_command(master="spark://spark-master:7077", base=STATE / "spark")
    assert _services()["spark-thrift"]["command"] == expected
