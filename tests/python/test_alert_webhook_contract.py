"""The notifier contract the Airflow failure callback relies on:
``post_json(url, payload, *, timeout=10.0) -> None``, raising ``WebhookError`` (a
``CondoError``) whenever the alert is not delivered. Checked against a real HTTP server on
127.0.0.1."""

from __future__ import annotations

import http.server
import json
import socket
import threading
from collections.abc import Iterator

import pytest

from spark_loaders.alerting.webhook import WebhookError, post_json
from spark_loaders.errors import CondoError


@pytest.fixture
def receiver() -> Iterator[tuple[str, list[tuple[str, bytes]], dict[str, int]]]:
    received: list[tuple[str, bytes]] = []
    answer = {"status": 200}

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            received.append((self.headers.get("Content-Type", ""), body))
            self.send_response(answer["status"])
            self.end_headers()

        def log_message(self, *args) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/hook", received, answer
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


def test_delivers_the_payload_as_json(receiver) -> None:
    url, received, _ = receiver
    post_json(url, {"text": "hello", "try_number": 2})
    assert len(received) == 1
    content_type, body = received[0]
    assert content_type.startswith("application/json")
    assert json.loads(body) == {"text": "hello", "try_number": 2}


def test_a_non_2xx_answer_raises(receiver) -> None:
    url, received, answer = receiver
    answer["status"] = 500
    with pytest.raises(WebhookError):
        post_json(url, {"text": "x"})
    assert len(received) == 1
    assert issubclass(WebhookError, CondoError)


def test_an_unreachable_receiver_raises() -> None:
    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    with pytest.raises(WebhookError):
        post_json(f"http://127.0.0.1:{port}/hook", {"text": "x"}, timeout=2.0)
