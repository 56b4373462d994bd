"""Helpers for the monitoring tests: the condo CLI as a subprocess, free ports, a local
HTTP receiver that records what webhooks post, and metric names in PromQL and dashboards."""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]


def condo(*args: str, env: dict[str, str] | None = None, timeout: float = 600):
    return subprocess.run(
        [sys.executable, "-m", "spark_loaders.cli", *args],
        cwd=ROOT,
        env={**os.environ, **(env or {})},
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Receiver:
    """Records every JSON body POSTed to it; answers ``status`` (settable)."""

    def __init__(self) -> None:
        self.bodies: list[Any] = []
        self.status = 200
        self.lock = threading.Lock()
        self.arrived = threading.Event()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hook/secret-token"


@contextmanager
def receiver() -> Iterator[Receiver]:
    rec = Receiver()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length)
            if rec.status < 300:
                with rec.lock:
                    rec.bodies.append(json.loads(body))
                rec.arrived.set()
            self.send_response(rec.status)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, format: str, *args: Any) -> None:
            return

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    rec.port = server.server_address[1]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield rec
    finally:
        server.shutdown()
        server.server_close()


_IDENT = re.compile(r"(?<![\w:])(condo_\w*)(?![\w:])")


def metric_names_in(text: str) -> set[str]:
    """``condo_*`` identifiers in PromQL text (label values such as check names are
    dotted and never start with ``condo_``; recording-rule names contain colons)."""
    return set(_IDENT.findall(text))


def exposed_names(exposition: str) -> set[str]:
    """Metric names of a Prometheus text exposition, counters under both their family name
    and their ``_total`` sample name."""
    names = set()
    for line in exposition.splitlines():
        if line.startswith("# TYPE "):
            names.add(line.split()[2])
        elif line and not line.startswith("#"):
            names.add(re.split(r"[{ ]", line, maxsplit=1)[0])
    return names
