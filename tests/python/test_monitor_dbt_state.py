"""The monitor's dbt check reads the project's state as dbt last left it, whether one
`dbt build` ran or an orchestrator (Cosmos) ran one `dbt run` / `dbt test` per node.

The invocations are recorded with the real history writer into a real PostgreSQL; only the
run_results documents are written by hand, in the shape dbt gives them."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import psycopg

from spark_loaders import monitor, ops_history

T0 = datetime(2026, 11, 1, 6, 0, tzinfo=UTC)


def record(conn, invocation: str, command: str, minute: int, nodes: dict[str, str]) -> None:
    document = {
        "metadata": {"invocation_id": invocation, "dbt_version": "1.11.0"},
        "args": {"which": command, "target": "postgres"},
        "results": [{"unique_id": uid, "status": status} for uid, status in nodes.items()],
    }
    start = T0 + timedelta(minutes=minute)
    ops_history.record_dbt_run(
        conn, document, started_at=start, finished_at=start + timedelta(seconds=30)
    )


def check(info) -> monitor.Check:
    with psycopg.connect(**info.psycopg_kwargs(), autocommit=True) as conn:
        return monitor.dbt_build_check(monitor.gather_dbt(conn).build)


MODEL = "model.condomanage.transacoes_por_condominio"
TEST = "test.condomanage.not_null_transacoes_por_condominio_condominio_id.1a2b3c"


def test_per_node_invocations_without_any_build_count(fresh_db) -> None:
    with psycopg.connect(**fresh_db.psycopg_kwargs(), autocommit=True) as conn:
        record(conn, "run-1", "run", 0, {MODEL: "success"})
        record(conn, "test-1", "test", 1, {TEST: "pass"})
    result = check(fresh_db)
    assert (result.level, result.message) == ("ok", "latest build passed (2 nodes)")


def test_a_later_node_run_replaces_the_builds_result_for_that_node(fresh_db) -> None:
    with psycopg.connect(**fresh_db.psycopg_kwargs(), autocommit=True) as conn:
        record(conn, "build-1", "build", 0, {MODEL: "error", TEST: "skipped"})
    assert check(fresh_db).level == "error"
    with psycopg.connect(**fresh_db.psycopg_kwargs(), autocommit=True) as conn:
        record(conn, "run-2", "run", 5, {MODEL: "success"})
    still = check(fresh_db)
    assert still.level == "error" and "1 test skipped" in still.message  # the test never re-ran
    with psycopg.connect(**fresh_db.psycopg_kwargs(), autocommit=True) as conn:
        record(conn, "test-2", "test", 6, {TEST: "pass"})
    assert check(fresh_db).level == "ok"


def test_a_new_full_build_starts_the_state_afresh(fresh_db) -> None:
    with psycopg.connect(**fresh_db.psycopg_kwargs(), autocommit=True) as conn:
        record(conn, "run-old", "run", 0, {"model.condomanage.removed_model": "error"})
        record(conn, "build-2", "build", 10, {MODEL: "success", TEST: "pass"})
    result = check(fresh_db)
    assert (result.level, result.message) == ("ok", "latest build passed (2 nodes)")
