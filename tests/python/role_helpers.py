"""A scratch database with the job roles applied, and a connection for each role."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import replace

import psycopg
from pg_helpers import scratch_database

from spark_loaders import embedded_pg, roles
from spark_loaders.connection import JOBS, ConnectionInfo, Job


def role_passwords(server: ConnectionInfo) -> dict[Job, str]:
    """The embedded server's own passwords (roles are cluster-wide: changing them would
    break the server's saved state); fresh ones on an external test server."""
    if server.source == "embedded":
        stored = embedded_pg.role_passwords()
        if all(job in stored for job in JOBS):
            return {job: stored[job] for job in JOBS}
    return roles.generate_passwords()


@contextlib.contextmanager
def role_database(
    server: ConnectionInfo, prefix: str = "roles"
) -> Iterator[tuple[ConnectionInfo, dict[Job, ConnectionInfo]]]:
    passwords = role_passwords(server)
    with scratch_database(server, prefix) as admin:
        with psycopg.connect(**admin.psycopg_kwargs(), autocommit=True) as conn:
            roles.apply(conn, passwords)
        as_role = {
            job: replace(admin, user=roles.role_name(job), password=passwords[job]) for job in JOBS
        }
        yield admin, as_role
