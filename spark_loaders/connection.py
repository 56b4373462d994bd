"""The single place that decides which PostgreSQL server the project talks to.

Resolution order:

1. ``CONDO_DATABASE_URL`` (a libpq URL such as ``postgresql://user:pw@host:5432/db``);
2. the standard libpq variables, as soon as ``PGHOST`` is set
   (``PGHOST``, ``PGPORT``, ``PGUSER``, ``PGPASSWORD``, ``PGDATABASE``);
3. otherwise the embedded server under ``.condo/pg``, started on demand.

Everything (the loaders, dbt through ``profiles/profiles.yml``, the export and the
streaming job) goes through :func:`resolve`, so switching between embedded, docker
compose and a managed server is only a matter of environment variables.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Literal
from urllib.parse import quote, unquote, urlsplit

from spark_loaders.errors import CondoError

Source = Literal["url", "env", "embedded"]


@dataclass(frozen=True)
class ConnectionInfo:
    host: str
    port: int
    user: str
    password: str | None
    dbname: str
    source: Source

    def url(self, *, hide_password: bool = False) -> str:
        """A libpq URL, usable by psql, psycopg and most clients."""
        auth = quote(self.user, safe="")
        if self.password:
            auth += ":" + ("***" if hide_password else quote(self.password, safe=""))
        return f"postgresql://{auth}@{self.host}:{self.port}/{quote(self.dbname, safe='')}"

    def jdbc_url(self) -> str:
        return f"jdbc:postgresql://{self.host}:{self.port}/{self.dbname}"

    def jdbc_properties(self) -> dict[str, str]:
        props = {"user": self.user, "driver": "org.postgresql.Driver"}
        if self.password:
            props["password"] = self.password
        return props

    def psycopg_kwargs(self) -> dict[str, str | int]:
        kwargs: dict[str, str | int] = {
            "host": self.host,
            "port": self.port,
            "user": self.user,
            "dbname": self.dbname,
            "application_name": "condo",
        }
        if self.password:
            kwargs["password"] = self.password
        return kwargs

    def env(self) -> dict[str, str]:
        """The libpq variables that describe this server; dbt's profile reads these."""
        env = {
            "PGHOST": self.host,
            "PGPORT": str(self.port),
            "PGUSER": self.user,
            "PGDATABASE": self.dbname,
        }
        env["PGPASSWORD"] = self.password or ""
        return env


def from_url(url: str) -> ConnectionInfo:
    parts = urlsplit(url)
    if parts.scheme not in ("postgres", "postgresql") or not parts.hostname:
        raise CondoError(
            "CONDO_DATABASE_URL must look like postgresql://user:password@host:5432/dbname"
        )
    try:
        port = parts.port or 5432
    except ValueError as exc:
        raise CondoError(f"CONDO_DATABASE_URL has an invalid port: {exc}") from None
    user = unquote(parts.username or "postgres")
    return ConnectionInfo(
        host=parts.hostname,
        port=port,
        user=user,
        password=unquote(parts.password) if parts.password else None,
        dbname=unquote(parts.path.lstrip("/")) or user,
        source="url",
    )


def from_environment(environ: dict[str, str] | os._Environ[str]) -> ConnectionInfo | None:
    """The external server named by the environment, or None when the embedded one applies."""
    url = environ.get("CONDO_DATABASE_URL")
    if url:
        return from_url(url)
    host = environ.get("PGHOST")
    if not host:
        return None
    port_text = environ.get("PGPORT", "5432")
    if not port_text.isdigit():
        raise CondoError(f"PGPORT must be a number, got {port_text!r}")
    user = environ.get("PGUSER", "postgres")
    return ConnectionInfo(
        host=host,
        port=int(port_text),
        user=user,
        password=environ.get("PGPASSWORD") or None,
        dbname=environ.get("PGDATABASE", user),
        source="env",
    )


def resolve(*, start: bool = True) -> ConnectionInfo:
    """The server to use. With ``start`` (the default) the embedded server is started
    when no external one is configured and it is not already running."""
    external = from_environment(os.environ)
    if external is not None:
        return external
    from spark_loaders import embedded_pg

    return embedded_pg.ensure_running() if start else embedded_pg.connection_info()
