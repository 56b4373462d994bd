"""POST a JSON payload to a webhook (Slack incoming webhooks, Mattermost, Alertmanager-style
receivers, or any HTTP endpoint).

:func:`post_json` is the one way the project delivers a notification. It either succeeds (a
2xx answer) or raises :class:`WebhookError` with one line that names the host but never the
URL's path or query: chat webhooks carry their secret token there.
"""

from __future__ import annotations

import json
import socket
import urllib.error
import urllib.request
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

from spark_loaders.errors import CondoError


class WebhookError(CondoError):
    """A notification could not be delivered (bad URL, connection error, timeout, non-2xx)."""

    exit_code = 3


def _where(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.hostname or '?'}{f':{parts.port}' if parts.port else ''}"


def post_json(url: str, payload: Mapping[str, Any], *, timeout: float = 10.0) -> None:
    """POST ``payload`` as JSON to ``url``; raise :class:`WebhookError` on any failure."""
    try:
        parts = urlsplit(url)
        valid = parts.scheme in ("http", "https") and bool(parts.hostname)
    except ValueError:
        valid = False
    if not valid:
        raise WebhookError("webhook URL must be an http:// or https:// URL with a host")
    where = _where(url)
    try:
        body = json.dumps(payload, default=str).encode("utf-8")
    except (TypeError, ValueError) as exc:
        raise WebhookError(f"webhook payload is not JSON-serialisable: {exc}") from None
    request = urllib.request.Request(
        url,
        data=body,
        method="POST",
        headers={"Content-Type": "application/json", "User-Agent": "condo-monitor"},
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            status = response.status
            response.read()
    except urllib.error.HTTPError as exc:
        raise WebhookError(f"webhook {where} answered HTTP {exc.code} {exc.reason}") from None
    except TimeoutError:
        raise WebhookError(f"webhook {where} did not answer within {timeout:g} s") from None
    except urllib.error.URLError as exc:
        reason = exc.reason
        if isinstance(reason, (TimeoutError, socket.timeout)):
            raise WebhookError(f"webhook {where} did not answer within {timeout:g} s") from None
        raise WebhookError(f"webhook {where} unreachable: {reason}") from None
    except (OSError, ValueError) as exc:
        raise WebhookError(f"webhook {where} failed: {exc}") from None
    if not 200 <= status < 300:
        raise WebhookError(f"webhook {where} answered HTTP {status}")
