"""`condo monitor` end to end: real loads into a real PostgreSQL, then the CLI's verdict."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from spark_loaders.export.models import MODEL_NAMES
from spark_loaders.ingest.api import ingest_files

ROOT = Path(__file__).resolve().parents[2]


def monitor(*args: str, status_file: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "spark_loaders.cli",
            "monitor",
            "--stream-status",
            str(status_file),
            *args,
        ],
        cwd=ROOT,
        env=dict(os.environ),
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_monitor_reports_rejects_freshness_and_exit_codes(spark, fresh_db, tmp_path) -> None:
    missing_status = tmp_path / "no-stream.json"
    before = monitor("--format", "json", status_file=missing_status)
    assert before.returncode == 2, before.stderr  # nothing loaded yet: never-loaded is an error
    assert all(
        c["level"] == "error"
        for c in json.loads(before.stdout)["checks"]
        if c["name"].startswith("freshness")
    )

    report = ingest_files(spark, [ROOT / "data" / "sample"], progress=False)
    assert report.ok
    healthy = monitor("--format", "json", status_file=missing_status)
    # No dbt build was recorded: only the dbt and gold checks say so, everything else is ok.
    not_ok = {c["name"] for c in json.loads(healthy.stdout)["checks"] if c["level"] != "ok"}
    assert not_ok == {"dbt.build"} | {f"freshness.gold.{m}" for m in MODEL_NAMES}, not_ok
    assert healthy.returncode == 2

    extra = tmp_path / "extra"
    extra.mkdir()
    (extra / "imoveis_extra.csv").write_text(
        "tipo,condominio_id,valor\nCasa,1,500000.00\nCasa,1,-10\n", encoding="utf-8"
    )
    assert ingest_files(spark, [extra], progress=False).ok
    degraded = monitor("--format", "json", status_file=missing_status)
    checks = {c["name"]: c for c in json.loads(degraded.stdout)["checks"]}
    # 1 of 38 imoveis rows rejected in the window: 2.6%, above the 1% warning threshold.
    assert checks["reject_rate.imoveis"]["level"] == "warn"
    assert "invalid_amount 1" in checks["reject_rate.imoveis"]["message"]

    strict = monitor(
        "--format", "prometheus", "--reject-rate-error", "0.02", status_file=missing_status
    )
    assert strict.returncode == 2
    assert 'condo_check_status{check="reject_rate.imoveis"} 2' in strict.stdout
    assert 'condo_rows{entity="imoveis",outcome="rejected"} 1' in strict.stdout

    failed_stream = tmp_path / "status.json"
    failed_stream.write_text(json.dumps({"state": "failed", "error": "PostgreSQL went away"}))
    table = monitor(status_file=failed_stream)
    assert table.returncode == 2
    assert "PostgreSQL went away" in table.stdout
