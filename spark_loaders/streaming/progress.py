"""Progress of the running stream, for humans and for monitoring.

``StatusBoard`` keeps the totals and the last micro-batch and writes them atomically to a
JSON status file (``.condo/stream/status.json`` by default). ``ProgressListener`` is a
``StreamingQueryListener`` that feeds Spark's own progress (trigger timings, input rates,
idle/terminated state) into the board. ``serve_status`` optionally exposes the same JSON on
``http://127.0.0.1:<port>/status`` for a scraper.
"""

from __future__ import annotations

import json
import os
import socket
import threading
from dataclasses import asdict
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from pyspark.sql.streaming import StreamingQueryListener

from spark_loaders.streaming.ledger import BatchRecord

TERMINAL = ("stopped", "failed")


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")


class StatusBoard:
    """Thread-safe status of one streaming run. The foreachBatch function, the listener and
    the main loop all update it; every update rewrites the status file."""

    def __init__(self, status_file: Path | None, *, config: dict[str, Any]) -> None:
        self.status_file = status_file
        self._lock = threading.Lock()
        self._state: dict[str, Any] = {
            "state": "starting",
            "pid": os.getpid(),
            "host": socket.gethostname(),
            "pending_retries": 0,
            "query_id": None,
            "run_id": None,
            "started_at": _now(),
            "updated_at": _now(),
            "config": config,
            "totals": {
                "batches": 0,
                "files": 0,
                "files_loaded": 0,
                "files_skipped": 0,
                "files_rejected": 0,
                "rows_read": 0,
                "rows_loaded": 0,
                "rows_rejected": 0,
            },
            "last_batch": None,
            "spark_progress": None,
            "ignored_files": [],
            "error": None,
        }
        self._write()

    def snapshot(self) -> dict[str, Any]:
        with self._lock:
            return json.loads(json.dumps(self._state, default=str))

    def update(self, **fields: Any) -> None:
        with self._lock:
            # Listener events arrive asynchronously and may trail the end of the query: a late
            # "running" must not overwrite "stopped" or "failed".
            if self._state["state"] in TERMINAL and fields.get("state") not in (None, *TERMINAL):
                fields.pop("state")
            self._state.update(fields)
            self._state["updated_at"] = _now()
            self._write()

    def add_batch(self, rec: BatchRecord) -> None:
        with self._lock:
            t = self._state["totals"]
            t["batches"] += 1
            t["files"] += len(rec.files)
            for status in ("loaded", "skipped", "rejected"):
                t[f"files_{status}"] += rec.count(status)
            t["rows_read"] += rec.rows_read
            t["rows_loaded"] += rec.rows_loaded
            t["rows_rejected"] += rec.rows_rejected
            self._state["last_batch"] = {
                "batch_id": rec.batch_id,
                "committed_at": _now(),
                "duration_ms": rec.duration_ms,
                "latency_ms": rec.latency_ms,
                "rows_read": rec.rows_read,
                "rows_loaded": rec.rows_loaded,
                "rows_rejected": rec.rows_rejected,
                "files": [asdict(f) for f in rec.files],
            }
            self._state["updated_at"] = _now()
            self._write()

    def _write(self) -> None:
        if self.status_file is None:
            return
        self.status_file.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.status_file.with_name(f".{self.status_file.name}.{os.getpid()}.tmp")
        tmp.write_text(json.dumps(self._state, indent=2, default=str))
        os.replace(tmp, self.status_file)


class ProgressListener(StreamingQueryListener):
    """Copies Spark's progress events into the status board."""

    def __init__(self, board: StatusBoard) -> None:
        self.board = board

    def onQueryStarted(self, event: Any) -> None:
        self.board.update(state="running", query_id=str(event.id), run_id=str(event.runId))

    def onQueryProgress(self, event: Any) -> None:
        p = event.progress
        self.board.update(
            state="running",
            spark_progress={
                "batch_id": p.batchId,
                "timestamp": p.timestamp,
                "num_input_files": p.numInputRows,
                "input_files_per_second": p.inputRowsPerSecond,
                "processed_files_per_second": p.processedRowsPerSecond,
                "duration_ms": dict(p.durationMs),
            },
        )

    def onQueryIdle(self, event: Any) -> None:
        self.board.update(state="idle")

    def onQueryTerminated(self, event: Any) -> None:
        if event.exception:
            self.board.update(state="failed", error=str(event.exception).splitlines()[0][:500])
        else:
            self.board.update(state="stopped")


def serve_status(board: StatusBoard, port: int) -> ThreadingHTTPServer:
    """Serve the status JSON on 127.0.0.1 (never on other interfaces) in a daemon thread."""

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            if self.path.rstrip("/") not in ("", "/status"):
                self.send_error(404)
                return
            body = json.dumps(board.snapshot(), indent=2).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            return

    server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
    threading.Thread(target=server.serve_forever, name="condo-stream-status", daemon=True).start()
    return server
