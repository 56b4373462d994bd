"""``condo monitor --notify URL``: post when a check changes level, and only then.

The last level delivered per check is kept in ``ops.alert_state``. :func:`changes` (pure)
compares it with the current checks; :func:`payload` (pure) builds one Slack-compatible
message (a ``text`` for people, a ``checks`` list for machines); :func:`notify` reads the
state, posts, and stores the new levels only once the post succeeded, so a failed delivery
is retried by the next run. A check seen for the first time counts as previously ``ok``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import psycopg

from spark_loaders import ops_history
from spark_loaders.alerting.webhook import post_json
from spark_loaders.monitor import Check, overall

# Serialises overlapping runs (cron every minute) so one change is posted once.
_NOTIFY_LOCK = (0x434F4E44, 3)


@dataclass(frozen=True)
class Change:
    check: Check
    previous: str

    @property
    def resolved(self) -> bool:
        return self.check.level == "ok"


def changes(previous: Mapping[str, str], checks: list[Check]) -> list[Change]:
    """Checks whose level differs from the last delivered one (unknown counts as ok)."""
    return [
        Change(check, previous.get(check.name, "ok"))
        for check in checks
        if check.level != previous.get(check.name, "ok")
    ]


def payload(found: list[Change], checks: list[Check], taken_at: datetime) -> dict[str, Any]:
    """A Slack-compatible message: ``text`` for people, ``checks`` for machines."""
    status = overall(checks)
    lines = [f"condo monitor: {status.upper()} ({len(found)} change(s))"]
    for change in found:
        c = change.check
        if change.resolved:
            lines.append(f"- resolved: {c.name} is back to ok (was {change.previous}): {c.message}")
        else:
            lines.append(f"- {c.level}: {c.name} (was {change.previous}): {c.message}")
    return {
        "text": "\n".join(lines),
        "status": status,
        "taken_at": taken_at.isoformat(),
        "checks": [
            {
                "name": change.check.name,
                "level": change.check.level,
                "previous": change.previous,
                "resolved": change.resolved,
                "message": change.check.message,
                "value": change.check.value,
            }
            for change in found
        ],
    }


def notify(
    conn: psycopg.Connection,
    url: str,
    checks: list[Check],
    taken_at: datetime,
    *,
    timeout: float = 10.0,
) -> list[Change]:
    """Post the changes since the last delivery (if any) and remember the new levels.

    Raises :class:`~spark_loaders.alerting.webhook.WebhookError` when the post fails; the
    state is then left as it was."""
    ops_history.ensure_history_schema(conn, ops_history.ALERT_RELATIONS, audit=False)
    with conn.transaction():
        conn.execute("select pg_advisory_xact_lock(%s, %s)", _NOTIFY_LOCK)
        rows = conn.execute("select check_name, level from ops.alert_state").fetchall()
        previous: dict[str, str] = dict(rows)
        found = changes(previous, checks)
        if found:
            post_json(url, payload(found, checks, taken_at), timeout=timeout)
        # Remember every check, the unchanged first-seen ok ones too, so a later failure is
        # compared with a known level.
        new = [c for c in checks if previous.get(c.name) != c.level]
        with conn.cursor() as cur:
            cur.executemany(
                "insert into ops.alert_state (check_name, level, message, changed_at,"
                " notified_at) values (%s, %s, %s, %s, %s) on conflict (check_name) do update"
                " set level = excluded.level, message = excluded.message,"
                " changed_at = excluded.changed_at, notified_at = excluded.notified_at",
                [(c.name, c.level, c.message, taken_at, taken_at) for c in new],
            )
    return found
