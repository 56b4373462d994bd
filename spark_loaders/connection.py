"""The single place that decides which PostgreSQL server the project talks to.

Every job connects as its own role (see :mod:`spark_loaders.roles`): the loaders and the
stream as ``loader``, dbt and the export as ``transformer``, BI as ``reader``, the monitor
as ``monitor``. Resolution order for a job:

0. the job's own ``CONDO_<JOB>_URL`` (``CONDO_LOADER_URL``, ``CONDO_TRANSFORMER_URL``,
   ``CONDO_READER_URL``, ``CONDO_MONITOR_URL``), when set;
1. ``CONDO_DATABASE_URL`` (a libpq URL such as ``postgresql://user:pw@host:5432/db``,
   optionally with ``?sslmode=require``);
2. the standard libpq variables, as soon as ``PGHOST`` is set
   (``PGHOST``, ``PGPORT``, ``PGUSER``, ``PGPASSWORD``, ``PGDATABASE``, ``PGSSLMODE``);
3. otherwise the embedded server under ``.condo/pg``, started on demand, as the job's role
   (with the password it generated); ``job=None`` is its superuser, for bootstrap only.

Everything (the loaders, dbt through ``profiles/profiles.yml``, the export and the
streaming job) goes through :func:`resolve`, so switching between embedded, docker
compose and a managed server is only a matter of environment variables.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal
from urllib.parse import parse_qsl, quote, unquote, urlsplit

from spark_loaders.errors import CondoError

Source = Literal["url", "env", "embedded"]
Job = Literal["loader", "transformer", "reader", "monitor"]
JOBS: tuple[Job, ...] = ("loader", "transformer", "reader", "monitor")


def job_url_variable(job: Job) -> str:
    """The environment variable that gives ``job`` its own connection."""
    return f"CONDO_{job.upper()}_URL"


SSL_MODES = ("disable", "allow", "prefer", "require", "verify-ca", "verify-full")


@dataclass(frozen=True)
class ConnectionInfo:
    host: str
    port: int
    user: str
    password: str | None
    dbname: str
    source: Source
    sslmode: str | None = None  # libpq's sslmode; None leaves the client default (prefer)

    @property
    def _netloc_host(self) -> str:
        return f"[{self.host}]" if ":" in self.host else self.host

    def url(self, *, hide_password: bool = False) -> str:
        """A libpq URL, usable by psql, psycopg and most clients."""
        auth = quote(self.user, safe="")
        if self.password:
            auth += ":" + ("***" if hide_password else quote(self.password, safe=""))
        query = f"?sslmode={self.sslmode}" if self.sslmode else ""
        return (
            f"postgresql://{auth}@{self._netloc_host}:{self.port}/"
            f"{quote(self.dbname, safe='')}{query}"
        )

    def jdbc_url(self) -> str:
        query = f"?sslmode={self.sslmode}" if self.sslmode else ""
        return (
            f"jdbc:postgresql://{self._netloc_host}:{self.port}/"
            f"{quote(self.dbname, safe='')}{query}"
        )

    def jdbc_properties(self) -> dict[str, str]:
        props = {"user": self.user, "driver": "org.postgresql.Driver"}
        if self.password:
            props["password"] = self.password
        return props

    def psycopg_kwargs(self) -> dict[str, Any]:
        kwargs: dict[str, Any] = {
            "host": self.host,
            "port": self.port,
            "user": self.user,
            "dbname": self.dbname,
            "application_name": "condo",
        }
        if self.password:
            kwargs["password"] = self.password
        if self.sslmode:
            kwargs["sslmode"] = self.sslmode
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
        if self.sslmode:
            env["PGSSLMODE"] = self.sslmode
        return env


def _port(text: str, where: str) -> int:
    if not text.isascii() or not text.isdigit() or not 0 < int(text) < 65536:
        raise CondoError(f"{where} must be a port number between 1 and 65535, got {text!r}")
    return int(text)


def _sslmode(value: str | None, where: str) -> str | None:
    if value is None or value == "":
        return None
    if value not in SSL_MODES:
        raise CondoError(f"{where} must be one of {', '.join(SSL_MODES)}, got {value!r}")
    return value


def from_url(url: str, variable: str = "CONDO_DATABASE_URL") -> ConnectionInfo:
    parts = urlsplit(url.strip())
    if parts.scheme not in ("postgres", "postgresql") or not parts.hostname:
        raise CondoError(f"{variable} must look like postgresql://user:password@host:5432/dbname")
    netloc_port = parts.netloc.rpartition("@")[2].rpartition("]")[2]
    port_text = netloc_port.rpartition(":")[2] if ":" in netloc_port else ""
    port = _port(port_text, f"the port in {variable}") if port_text else 5432
    params = dict(parse_qsl(parts.query, keep_blank_values=True))
    unsupported = sorted(set(params) - {"sslmode"})
    if unsupported:
        raise CondoError(
            f"{variable} has unsupported parameter(s) {', '.join(unsupported)} "
            "(only sslmode is understood)"
        )
    user = unquote(parts.username or "postgres")
    return ConnectionInfo(
        host=parts.hostname,
        port=port,
        user=user,
        password=unquote(parts.password) if parts.password else None,
        dbname=unquote(parts.path.lstrip("/")) or user,
        source="url",
        sslmode=_sslmode(params.get("sslmode"), f"sslmode in {variable}"),
    )


def from_environment(environ: Mapping[str, str], job: Job | None = None) -> ConnectionInfo | None:
    """The external server named by the environment for ``job`` (its own URL variable
    first, then the shared settings), or None when the embedded one applies."""
    if job is not None:
        variable = job_url_variable(job)
        own = environ.get(variable)
        if own:
            return from_url(own, variable)
    url = environ.get("CONDO_DATABASE_URL")
    if url:
        return from_url(url)
    host = environ.get("PGHOST")
    if not host:
        return None
    port = _port(environ.get("PGPORT") or "5432", "PGPORT")
    user = environ.get("PGUSER") or "postgres"
    dbname = environ.get("PGDATABASE") or user
    password = environ.get("PGPASSWORD") or passfile_password(environ, host, port, dbname, user)
    return ConnectionInfo(
        host=host,
        port=port,
        user=user,
        password=password,
        dbname=dbname,
        source="env",
        sslmode=_sslmode(environ.get("PGSSLMODE"), "PGSSLMODE"),
    )


def _passfile_fields(line: str) -> list[str]:
    fields, current, escaped = [], [], False
    for char in line:
        if escaped:
            current.append(char)
            escaped = False
        elif char == "\\":
            escaped = True
        elif char == ":":
            fields.append("".join(current))
            current = []
        else:
            current.append(char)
    fields.append("".join(current))
    return fields


def passfile_password(
    environ: Mapping[str, str], host: str, port: int, dbname: str, user: str
) -> str | None:
    """The password libpq would take from ``PGPASSFILE`` (default ``~/.pgpass``) for this
    server, so that JDBC, which does not read the file, gets it too (``condo db env``
    exports a password file rather than ``PGPASSWORD``)."""
    path = Path(environ.get("PGPASSFILE") or Path.home() / ".pgpass")
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError:
        return None
    wanted = (host, str(port), dbname, user)
    for line in lines:
        if not line.strip() or line.startswith("#"):
            continue
        fields = _passfile_fields(line)
        if len(fields) != 5:
            continue
        if all(field in ("*", value) for field, value in zip(fields[:4], wanted, strict=True)):
            return fields[4] or None
    return None


def resolve(job: Job | None = None, *, start: bool = True) -> ConnectionInfo:
    """The connection for ``job`` (None: the administrator's, for bootstrap). With
    ``start`` (the default) the embedded server is started when no external one is
    configured and it is not already running."""
    if job is not None and job not in JOBS:
        raise ValueError(f"unknown job {job!r}")
    external = from_environment(os.environ, job)
    if external is not None:
        return external
    from spark_loaders import embedded_pg

    if start:
        return embedded_pg.ensure_running(job)
    return embedded_pg.connection_info(job=job)
