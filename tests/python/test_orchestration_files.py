"""The files under orchestration/ that are not the Airflow DAG: systemd units and the
crontab example. The units are checked by systemd itself (`systemd-analyze verify`)."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

PROJECT_ROOT = Path(__file__).resolve().parents[2]
SYSTEMD_DIR = PROJECT_ROOT / "orchestration" / "systemd"
CRONTAB = PROJECT_ROOT / "orchestration" / "cron" / "crontab.example"
INSTALL_PREFIX = "/opt/condomanage"
UNITS = (
    "condo-stream.service",
    "condo-pipeline.service",
    "condo-pipeline.timer",
    "condo-monitor.service",
    "condo-monitor.timer",
)


def parse_unit(path: Path) -> dict[str, dict[str, list[str]]]:
    sections: dict[str, dict[str, list[str]]] = {}
    current = None
    for raw in path.read_text(encoding="utf-8").splitlines():
        line = raw.strip()
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("["):
            current = sections.setdefault(line.strip("[]"), {})
            continue
        key, _, value = line.partition("=")
        assert current is not None, f"{path.name}: {line!r} outside a section"
        current.setdefault(key, []).append(value)
    return sections


@pytest.mark.skipif(
    shutil.which("systemd-analyze") is None,
    reason="systemd-analyze not installed (Debian/Ubuntu: apt-get install systemd)",
)
def test_systemd_analyze_verifies_the_units(tmp_path) -> None:
    """Verify with the paths rewritten to this checkout, where .venv/bin/condo exists:
    systemd checks that every ExecStart binary is there and executable."""
    condo = PROJECT_ROOT / ".venv" / "bin" / "condo"
    assert condo.is_file(), "run `make install` first"
    for name in UNITS:
        text = (SYSTEMD_DIR / name).read_text(encoding="utf-8")
        (tmp_path / name).write_text(text.replace(INSTALL_PREFIX, str(PROJECT_ROOT)))
    result = subprocess.run(
        ["systemd-analyze", "verify", *(str(tmp_path / n) for n in UNITS)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    # verify prints nothing for clean units; warnings (unknown keys, bad values) go to stderr.
    noise = [
        line
        for line in (result.stdout + result.stderr).splitlines()
        if line.strip() and str(tmp_path) in line
    ]
    assert result.returncode == 0, result.stdout + result.stderr
    assert noise == [], "\n".join(noise)


def test_systemd_analyze_rejects_a_broken_unit(tmp_path) -> None:
    """The check above can fail: a unit with a typo in a key does not verify cleanly."""
    if shutil.which("systemd-analyze") is None:
        pytest.skip("systemd-analyze not installed (Debian/Ubuntu: apt-get install systemd)")
    text = (SYSTEMD_DIR / "condo-monitor.timer").read_text(encoding="utf-8")
    broken = tmp_path / "condo-monitor.timer"
    broken.write_text(text.replace("OnUnitActiveSec=", "OnUnitActivSec="))
    result = subprocess.run(
        ["systemd-analyze", "verify", str(broken)], capture_output=True, text=True, timeout=120
    )
    assert "OnUnitActivSec" in result.stdout + result.stderr


def test_stream_service_restarts_on_failure_and_stops_gracefully() -> None:
    unit = parse_unit(SYSTEMD_DIR / "condo-stream.service")
    service = unit["Service"]
    assert service["Restart"] == ["on-failure"]
    assert service["KillSignal"] == ["SIGTERM"]
    # SIGTERM to condo only, so the micro-batch in flight commits before the JVM goes away.
    assert service["KillMode"] == ["mixed"]
    assert int(service["TimeoutStopSec"][0]) >= 60
    assert service["ExecStart"][0].endswith("/bin/condo stream")


def test_timers_drive_the_pipeline_daily_and_the_monitor_with_notify() -> None:
    pipeline_timer = parse_unit(SYSTEMD_DIR / "condo-pipeline.timer")["Timer"]
    assert pipeline_timer["Unit"] == ["condo-pipeline.service"]
    assert re.fullmatch(r"\*-\*-\* \d\d:\d\d:\d\d", pipeline_timer["OnCalendar"][0])
    assert pipeline_timer["Persistent"] == ["true"]
    pipeline = parse_unit(SYSTEMD_DIR / "condo-pipeline.service")["Service"]
    assert pipeline["Type"] == ["oneshot"]
    assert " pipeline " in pipeline["ExecStart"][0]
    monitor_timer = parse_unit(SYSTEMD_DIR / "condo-monitor.timer")["Timer"]
    assert monitor_timer["Unit"] == ["condo-monitor.service"]
    monitor = parse_unit(SYSTEMD_DIR / "condo-monitor.service")["Service"]
    assert "--notify ${CONDO_ALERT_WEBHOOK_URL}" in monitor["ExecStart"][0]


def test_every_crontab_job_is_guarded_by_flock() -> None:
    jobs = [
        line
        for line in CRONTAB.read_text(encoding="utf-8").splitlines()
        if line.strip() and not line.startswith("#") and "=" not in line.split()[0]
    ]
    assert len(jobs) == 3
    for job in jobs:
        fields = job.split(None, 5)
        assert len(fields) == 6, job
        assert "flock -n /tmp/condo-" in fields[5], job
        assert ".venv/bin/condo " in fields[5], job
    locks = [re.search(r"flock -n (\S+)", job)[1] for job in jobs]
    assert len(set(locks)) == len(locks)
