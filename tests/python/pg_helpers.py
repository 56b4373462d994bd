"""Scratch databases on the test server, shared by fixtures that need their own."""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Iterator
from dataclasses import replace

import psycopg

from spark_loaders.connection import ConnectionInfo


@contextlib.contextmanager
def scratch_database(server: ConnectionInfo, prefix: str = "t") -> Iterator[ConnectionInfo]:
    """Create an empty database named ``<prefix>_<random>``; drop it (even if in use) after."""
    name = f"{prefix}_{uuid.uuid4().hex[:12]}"
    admin = server.psycopg_kwargs()
    with psycopg.connect(**admin, autocommit=True) as conn:
        conn.execute(f'create database "{name}"')
    try:
        yield replace(server, dbname=name, source="url")
    finally:
        with psycopg.connect(**admin, autocommit=True) as conn:
            conn.execute(f'drop database if exists "{name}" with (force)')
