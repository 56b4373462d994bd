"""POST a JSON alert to a webhook (Slack-compatible when the payload carries ``text``).

A minimal notifier: one HTTP POST with the standard library, no retries. Anything that
is not a 2xx answer (a refused connection, a timeout, a 500) raises :class:`WebhookError`,
so the caller decides whether a lost alert is fatal.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Mapping
from typing import Any

from spark_loaders.errors import CondoError


class WebhookError(CondoError):
    """The alert could not be delivered."""

    exit_code = 1


def _where(url: str) -> str:
    # Webhook paths often carry the secret (Slack's do): name only scheme and host.
    parts = urllib.parse.urlsplit(url)
    return f"{parts.scheme}://{parts.hostname or ''}{':' + str(parts.port) if parts.port else ''}"


def post_json(url: str, payload: Mapping[str, Any], *, timeout: float = 10.0) -> None:
    """Send ``payload`` as a JSON body to ``url``; raise :class:`WebhookError` unless the
    receiver answers 2xx within ``timeout`` seconds."""
    if not url.startswith(("http://", "https://")):
        raise WebhookError("webhook URL must start with http:// or https://")
    where = _where(url)
    body = json.dumps(dict(payload), default=str).encode("utf-8")
    request = urllib.request.Request(
        url,
        data=body,
        method="POST",
        headers={"Content-Type": "application/json", "User-Agent": "condo-alert/1"},
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            status = response.status
    except urllib.error.HTTPError as exc:
        raise WebhookError(f"webhook {where} answered HTTP {exc.code}") from None
    except (urllib.error.URLError, TimeoutError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        raise WebhookError(f"webhook {where} unreachable: {reason}") from None
    if not 200 <= status < 300:
        raise WebhookError(f"webhook {where} answered HTTP {status}")
