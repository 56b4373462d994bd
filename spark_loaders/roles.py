"""Least-privilege database roles: the one place that says who may do what.

Four login roles, one per kind of job:

=====================  ============================================================
``condo_loader``       owns ``bronze``, ``bronze_loads`` and ``ops`` (the load ledger);
                       ``condo load``, ``condo stream`` and ``condo bronze compact``
``condo_transformer``  reads ``bronze`` and ``ops``; owns ``silver``, ``gold`` and
                       ``audit``; writes the dbt and export history in ``ops``;
                       ``condo dbt``, ``condo docs`` and ``condo export``
``condo_reader``       ``SELECT`` on ``gold`` only (BI tools, analysts)
``condo_monitor``      reads ``ops``, ``audit`` and ``silver``; writes ``ops.alert_state``;
                       ``condo monitor``
=====================  ============================================================

None of them is a superuser or may create roles or databases; ``PUBLIC`` loses its
default rights on the database and on schema ``public``. :func:`apply` creates or
repairs all of this idempotently, as an administrator, in one database; it is what
``condo db roles`` and the embedded server's initialisation run.

The objects of the run history (``ops.dbt_runs``, ``ops.dbt_results``, ``ops.exports``,
``ops.alert_state``, :mod:`spark_loaders.ops_history`) are created here, by the
administrator, before any job runs, so it does not matter which job comes first and no job
needs CREATE on ``ops`` or on the database: like everything in ``ops`` they belong to the
loader, and :data:`TABLE_GRANTS` lets the writing role write them. Adding a table that a
role other than its schema's owner writes: create it in :func:`apply_database` and add a
line to :data:`TABLE_GRANTS` (a missing table is skipped; the grant lands on the next
``condo db roles``, or the creating component calls :func:`grant_tables`), and bump
:data:`VERSION`.
"""

from __future__ import annotations

import secrets
from collections.abc import Mapping
from dataclasses import dataclass

import psycopg
from psycopg import sql

from spark_loaders.connection import JOBS, Job

# Bumped whenever the statements below change, so the embedded server re-applies them
# once on its next start (older state directories get the roles that way too).
VERSION = 2


@dataclass(frozen=True)
class Role:
    job: Job
    name: str
    connection_limit: int
    temporary: bool  # may create temporary tables (dbt's incremental models do)
    description: str


ROLES: dict[Job, Role] = {
    "loader": Role("loader", "condo_loader", 20, True, "writes bronze and the load ledger"),
    "transformer": Role(
        "transformer", "condo_transformer", 20, True, "reads bronze/ops, owns silver/gold"
    ),
    "reader": Role("reader", "condo_reader", 30, False, "reads gold (BI tools)"),
    "monitor": Role("monitor", "condo_monitor", 5, False, "reads ops, writes alert state"),
}

# Schemas and the role owning them (and every relation in them).
SCHEMA_OWNERS: dict[str, Job] = {
    "bronze": "loader",
    "bronze_loads": "loader",
    "ops": "loader",
    "silver": "transformer",
    "gold": "transformer",
    "audit": "transformer",
}

# Grants on schemas and on what exists in them now; {role} placeholders are role names.
# Each line is independent of the tables that exist, so it never fails on a new database.
SCHEMA_GRANTS: tuple[str, ...] = (
    # transformer: reads bronze and the ledger (its run records: TABLE_GRANTS)
    "grant usage on schema bronze, ops to {transformer}",
    "grant select on all tables in schema bronze, ops to {transformer}",
    # reader: gold only
    "grant usage on schema gold to {reader}",
    "grant select on all tables in schema gold to {reader}",
    # monitor: the ops tables, whoever wrote them (its alert state: TABLE_GRANTS), the
    # tables dbt stores test failures in, and silver (the orphan check counts its rows)
    "grant usage on schema ops, audit, silver to {monitor}",
    "grant select on all tables in schema ops, audit, silver to {monitor}",
    # version 1 let them create their run records and alert state themselves; the
    # bootstrap creates those now
    "revoke create on schema ops from {transformer}, {monitor}",
)

# Tables created later: privileges granted automatically by whoever creates them.
DEFAULT_PRIVILEGES: tuple[str, ...] = (
    "alter default privileges for role {loader} in schema bronze grant select on tables to {transformer}",
    "alter default privileges for role {loader} in schema ops grant select on tables to {transformer}, {monitor}",
    "alter default privileges for role {transformer} in schema gold grant select on tables to {reader}",
    "alter default privileges for role {transformer} in schema silver, audit grant select on tables to {monitor}",
)

# (table, privileges, job): grants on single tables that a role other than the owner needs.
# Applied only where the table exists.
TABLE_GRANTS: tuple[tuple[str, str, Job], ...] = (
    # the dbt job's run history (condo dbt, condo pipeline)
    ("ops.dbt_runs", "select, insert", "transformer"),
    ("ops.dbt_results", "select, insert", "transformer"),
    # what condo export published
    ("ops.exports", "select, insert", "transformer"),
    # the last level condo monitor --notify delivered per check
    ("ops.alert_state", "select, insert, update", "monitor"),
)

# PUBLIC's rights: none on the database but what we grant, no create in schema public.
PUBLIC_REVOKES: tuple[str, ...] = (
    "revoke all on database {database} from public",
    "revoke create on schema public from public",
)


def role_name(job: Job) -> str:
    return ROLES[job].name


def generate_passwords() -> dict[Job, str]:
    return {job: secrets.token_urlsafe(24) for job in JOBS}


def _names(database: str) -> dict[str, sql.Composable]:
    names: dict[str, sql.Composable] = {job: sql.Identifier(ROLES[job].name) for job in JOBS}
    names["database"] = sql.Identifier(database)
    return names


def _render(template: str, names: Mapping[str, sql.Composable]) -> sql.Composed:
    return sql.SQL(template).format(**names)  # type: ignore[arg-type]


def _role_attributes(role: Role) -> sql.Composed:
    return sql.SQL(
        "login nosuperuser nocreatedb nocreaterole noreplication nobypassrls noinherit "
        "connection limit {}"
    ).format(sql.Literal(role.connection_limit))


def ensure_roles(conn: psycopg.Connection, passwords: Mapping[Job, str | None]) -> list[str]:
    """Create the four roles where missing and reset their attributes. A password is set
    when given (a new role without one cannot log in until it gets one). Returns the
    names of the roles that were created."""
    created = []
    for job in JOBS:
        role = ROLES[job]
        ident = sql.Identifier(role.name)
        exists = conn.execute("select 1 from pg_roles where rolname = %s", (role.name,)).fetchone()
        verb = sql.SQL("alter role" if exists else "create role")
        conn.execute(sql.SQL("{} {} with {}").format(verb, ident, _role_attributes(role)))
        if not exists:
            created.append(role.name)
        password = passwords.get(job)
        if password:
            conn.execute(
                sql.SQL("alter role {} with password {}").format(ident, sql.Literal(password))
            )
        conn.execute(
            sql.SQL("comment on role {} is {}").format(
                ident, sql.Literal(f"CondoManage {job}: {role.description}")
            )
        )
    return created


def _owned_relations(conn: psycopg.Connection, schema: str, owner: str) -> list[tuple[str, str]]:
    """Relations in ``schema`` not owned by ``owner``: (kind keyword, name)."""
    rows = conn.execute(
        """
        select c.relkind, c.relname from pg_class c
        join pg_namespace n on n.oid = c.relnamespace
        where n.nspname = %s and c.relkind in ('r', 'p', 'v', 'm', 'S', 'f')
          and pg_get_userbyid(c.relowner) <> %s
          -- sequences owned by a column follow their table
          and not exists (
              select 1 from pg_depend d
              where d.objid = c.oid and d.deptype in ('a', 'i') and c.relkind = 'S'
          )
        order by c.relname
        """,
        (schema, owner),
    ).fetchall()
    kinds = {
        "r": "table",
        "p": "table",
        "v": "view",
        "m": "materialized view",
        "S": "sequence",
        "f": "foreign table",
    }
    return [(kinds[kind], name) for kind, name in rows]


def apply_database(conn: psycopg.Connection) -> None:
    """Schemas, ownership and grants in the connected database (the roles must exist).
    Objects created before the roles existed (an older embedded server, a server used
    as superuser until now) are handed over to the role owning their schema. The run
    history's tables are created here (then handed over to the loader like the rest of
    ``ops``), so the jobs that write them need no CREATE right."""
    from spark_loaders import ops_history

    database = conn.info.dbname
    names = _names(database)
    for job in JOBS:
        privileges = "connect, temporary" if ROLES[job].temporary else "connect"
        conn.execute(_render(f"grant {privileges} on database {{database}} to {{{job}}}", names))
    for statement in PUBLIC_REVOKES:
        conn.execute(_render(statement, names))
    ops_history.ensure_history_schema(conn)
    for schema, job in SCHEMA_OWNERS.items():
        owner = ROLES[job].name
        conn.execute(
            sql.SQL("create schema if not exists {} authorization {}").format(
                sql.Identifier(schema), sql.Identifier(owner)
            )
        )
        conn.execute(
            sql.SQL("alter schema {} owner to {}").format(
                sql.Identifier(schema), sql.Identifier(owner)
            )
        )
        conn.execute(sql.SQL("revoke all on schema {} from public").format(sql.Identifier(schema)))
        for kind, name in _owned_relations(conn, schema, owner):
            conn.execute(
                sql.SQL("alter {} {}.{} owner to {}").format(
                    sql.SQL(kind),
                    sql.Identifier(schema),
                    sql.Identifier(name),
                    sql.Identifier(owner),
                )
            )
    for statement in (*SCHEMA_GRANTS, *DEFAULT_PRIVILEGES):
        conn.execute(_render(statement, names))
    grant_tables(conn)


def grant_tables(conn: psycopg.Connection) -> None:
    """Apply :data:`TABLE_GRANTS` to the tables that exist."""
    for table, privileges, job in TABLE_GRANTS:
        exists = conn.execute("select to_regclass(%s) is not null", (table,)).fetchone()
        if exists and exists[0]:
            schema, _, name = table.partition(".")
            conn.execute(
                sql.SQL("grant {} on {}.{} to {}").format(
                    sql.SQL(privileges),
                    sql.Identifier(schema),
                    sql.Identifier(name),
                    sql.Identifier(ROLES[job].name),
                )
            )


def apply(conn: psycopg.Connection, passwords: Mapping[Job, str | None]) -> list[str]:
    """Everything, in one transaction: roles (cluster-wide) and the connected database's
    schemas and grants. ``conn`` must be an administrator's (superuser, or a role with
    CREATEROLE that owns the database). Returns the roles it created."""
    with conn.transaction():
        # Two concurrent first starts must not both try to create the roles.
        conn.execute("select pg_advisory_xact_lock(hashtext('condo roles'))")
        created = ensure_roles(conn, passwords)
        apply_database(conn)
    return created
