"""The alert path with the real binaries: a load with a wholly rejected file -> `condo
monitor serve` -> Prometheus (the project's prometheus.yml and alerts.yml) -> Alertmanager
(the project's alertmanager.yml) -> a webhook receiver run by this test.

Only the addresses and the intervals differ from the shipped configs (seconds instead of
minutes, so the test takes seconds); every process listens on 127.0.0.1 on a free port and
is stopped by its own pid.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import yaml
from monitoring_helpers import ROOT, free_port, receiver

from spark_loaders.ingest.api import ingest_files

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        not (shutil.which("prometheus") and shutil.which("prometheus-alertmanager")),
        reason="needs Debian's prometheus and prometheus-alertmanager (.ci/run installs them)",
    ),
]

REJECTED = "tipo,condominio_id\nCasa,1\n"  # the required column `valor` is missing


@contextmanager
def process(args: list[str], log: Path, env: dict[str, str] | None = None) -> Iterator:
    with log.open("w") as out:
        proc = subprocess.Popen(args, stdout=out, stderr=subprocess.STDOUT, env=env, cwd=ROOT)
    try:
        yield proc
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def wait_http(url: str, proc, log: Path, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            with urllib.request.urlopen(url, timeout=5):
                return
        except OSError:
            if proc.poll() is not None or time.monotonic() > deadline:
                raise AssertionError(f"{url} never answered:\n{log.read_text()[-3000:]}") from None
            time.sleep(0.3)


def prometheus_config(tmp: Path, monitor_port: int, am_port: int) -> Path:
    config = yaml.safe_load((ROOT / "monitoring" / "prometheus" / "prometheus.yml").read_text())
    config["global"].update(scrape_interval="1s", scrape_timeout="1s", evaluation_interval="1s")
    config["rule_files"] = [str(ROOT / "monitoring" / "prometheus" / "alerts.yml")]
    config["alerting"]["alertmanagers"][0]["static_configs"] = [
        {"targets": [f"127.0.0.1:{am_port}"]}
    ]
    [job] = config["scrape_configs"]
    assert job["job_name"] == "condo"
    job["static_configs"] = [{"targets": [f"127.0.0.1:{monitor_port}"]}]
    path = tmp / "prometheus.yml"
    path.write_text(yaml.safe_dump(config))
    return path


def alertmanager_config(tmp: Path, webhook: str) -> Path:
    config = yaml.safe_load((ROOT / "monitoring" / "alertmanager" / "alertmanager.yml").read_text())
    config["route"].update(group_wait="1s", group_interval="1s")
    [receiver_cfg] = config["receivers"]
    receiver_cfg["webhook_configs"][0]["url"] = webhook
    path = tmp / "alertmanager.yml"
    path.write_text(yaml.safe_dump(config))
    return path


def test_a_wholly_rejected_file_reaches_a_person(spark, fresh_db, tmp_path: Path) -> None:
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "imoveis_quebrado.csv").write_text(REJECTED, encoding="utf-8")
    assert ingest_files(spark, [bad], progress=False).count("rejected") == 1

    monitor_port, prom_port, am_port = free_port(), free_port(), free_port()
    env = {**os.environ}
    with (
        receiver() as hook,
        process(
            [
                sys.executable,
                "-m",
                "spark_loaders.cli",
                "monitor",
                "serve",
                "--port",
                str(monitor_port),
            ],
            tmp_path / "monitor.log",
            env,
        ) as monitor,
        process(
            [
                "prometheus-alertmanager",
                f"--config.file={alertmanager_config(tmp_path, hook.url)}",
                f"--storage.path={tmp_path / 'am'}",
                f"--web.listen-address=127.0.0.1:{am_port}",
                "--cluster.listen-address=",
            ],
            tmp_path / "alertmanager.log",
        ) as alertmanager,
        process(
            [
                "prometheus",
                f"--config.file={prometheus_config(tmp_path, monitor_port, am_port)}",
                f"--storage.tsdb.path={tmp_path / 'tsdb'}",
                f"--web.listen-address=127.0.0.1:{prom_port}",
            ],
            tmp_path / "prometheus.log",
        ) as prometheus,
    ):
        wait_http(f"http://127.0.0.1:{monitor_port}/metrics", monitor, tmp_path / "monitor.log")
        wait_http(
            f"http://127.0.0.1:{am_port}/-/ready", alertmanager, tmp_path / "alertmanager.log"
        )
        wait_http(f"http://127.0.0.1:{prom_port}/-/ready", prometheus, tmp_path / "prometheus.log")

        deadline = time.monotonic() + 90
        delivered = None
        while delivered is None and time.monotonic() < deadline:
            hook.arrived.wait(timeout=1)
            with hook.lock:
                for body in hook.bodies:
                    for alert in body.get("alerts", []):
                        if alert["labels"].get("alertname") == "CondoLoadFailures":
                            delivered = (body, alert)
        assert delivered is not None, (
            f"no CondoLoadFailures delivered; got {hook.bodies}\n"
            + (tmp_path / "prometheus.log").read_text()[-2000:]
        )
        body, alert = delivered
        assert alert["status"] == "firing"
        assert alert["labels"]["entity"] == "imoveis"
        assert alert["labels"]["severity"] == "critical"
        assert body["groupLabels"] == {"severity": "critical"}  # grouped by severity
        assert alert["annotations"]["runbook"] == "docs/monitoring.md#condoloadfailures"
        assert (
            "imoveis: 1 file(s) failed or were wholly rejected" in alert["annotations"]["summary"]
        )
        # the loads that did not fail raise nothing of the kind
        assert not any(
            a["labels"].get("alertname") == "CondoLoadFailures"
            and a["labels"]["entity"] != "imoveis"
            for b in hook.bodies
            for a in b.get("alerts", [])
        )
