"""`condo monitor --notify URL` against a real local HTTP receiver and a real PostgreSQL:
post on a level change only, "resolved" when a check returns to ok, and a failed delivery
exits non-zero with one line and is retried by the next run."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from pathlib import Path

import psycopg
import pytest
from monitoring_helpers import condo, free_port, receiver

from spark_loaders.alerting.notify import changes, payload
from spark_loaders.alerting.webhook import WebhookError, post_json
from spark_loaders.errors import CondoError
from spark_loaders.ingest.api import ingest_files
from spark_loaders.monitor import Check

# wholly rejected: the required column `valor` is missing
REJECTED = "tipo,condominio_id\nCasa,1\n"


def state(info) -> dict[str, str]:
    with psycopg.connect(**info.psycopg_kwargs()) as conn:
        return dict(conn.execute("select check_name, level from ops.alert_state").fetchall())


def notify(url: str, status: Path, *extra: str):
    # only the load failure checks move in this test; the window decides when they clear
    return condo(
        "monitor", "--format", "json", "--stream-status", str(status), "--notify", url, *extra
    )


def test_notify_posts_changes_once_then_resolved(spark, fresh_db, tmp_path: Path) -> None:
    status = tmp_path / "no-stream.json"
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "imoveis_quebrado.csv").write_text(REJECTED, encoding="utf-8")
    report = ingest_files(spark, [bad], progress=False)
    assert report.count("rejected") == 1

    with receiver() as hook:
        hook.status = 500
        failed = notify(hook.url, status)
        assert failed.returncode == 3, failed.stderr
        error_lines = [line for line in failed.stderr.splitlines() if "error" in line]
        assert error_lines == [
            f"condo: error: webhook http://127.0.0.1:{hook.port} answered HTTP 500 "
            "Internal Server Error"
        ]
        assert "secret-token" not in failed.stderr
        assert state(fresh_db) == {}  # nothing remembered: the next run retries

        hook.status = 200
        first = notify(hook.url, status)
        assert first.returncode == 2, first.stderr
        assert len(hook.bodies) == 1
        body = hook.bodies[0]
        posted = {c["name"]: c for c in body["checks"]}
        assert posted["failures.imoveis"]["level"] == "error"
        assert posted["failures.imoveis"]["previous"] == "ok"
        assert "failures.imoveis" in body["text"] and body["text"].startswith(
            "condo monitor: ERROR"
        )
        assert state(fresh_db)["failures.imoveis"] == "error"

        again = notify(hook.url, status)
        assert again.returncode == 2
        assert len(hook.bodies) == 1  # unchanged: nothing posted
        assert "no change to notify" in again.stderr

        time.sleep(2)  # the rejected file leaves a 1-second window: failures are ok again
        fixed = notify(hook.url, status, "--since-hours", str(1 / 3600))
        assert len(hook.bodies) == 2, fixed.stderr
        resolved = {c["name"]: c for c in hook.bodies[1]["checks"]}
        assert resolved["failures.imoveis"]["resolved"] is True
        assert resolved["failures.imoveis"]["level"] == "ok"
        assert "resolved: failures.imoveis" in hook.bodies[1]["text"]
        assert "failures.condominios" not in resolved  # never changed, never posted
        assert state(fresh_db)["failures.imoveis"] == "ok"


def test_changes_and_payload_are_pure() -> None:
    checks = [Check("a", "error", "broken"), Check("b", "ok", "fine"), Check("c", "warn", "hm")]
    found = changes({"a": "error", "c": "error", "b": "ok"}, checks)
    assert [(c.check.name, c.previous, c.resolved) for c in found] == [("c", "error", False)]
    first = changes({}, checks)  # unknown counts as ok: only the non-ok checks are news
    assert [c.check.name for c in first] == ["a", "c"]
    body = payload(found, checks, datetime.now(UTC))
    assert body["status"] == "error" and body["checks"][0]["previous"] == "error"


def test_post_json_failures_are_webhook_errors() -> None:
    assert issubclass(WebhookError, CondoError)
    with pytest.raises(WebhookError, match="unreachable"):
        post_json(f"http://127.0.0.1:{free_port()}/x", {"text": "hi"}, timeout=2)
    with pytest.raises(WebhookError, match="http:// or https://"):
        post_json("ftp://example.com/x", {"text": "hi"})
    with receiver() as hook:
        post_json(hook.url, {"text": "hi", "n": 1})
        assert hook.bodies == [{"text": "hi", "n": 1}]
        hook.status = 404
        with pytest.raises(WebhookError, match="HTTP 404"):
            post_json(hook.url, {"text": "again"})
