"""``condo bronze compact`` against a real PostgreSQL: rows and lineage kept exactly, the
partition and index layout after the swap, the ledger, a ``--force`` reload of a merged
load, a swap that cannot get its lock, and a SIGKILL in the middle of a compaction."""

from __future__ import annotations

import datetime as dt
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import psycopg
import pytest
from load_helpers import leftover_tables, rows, scalar
from synthetic_loads import bulk_load, transactions_sql

from spark_loaders import cli
from spark_loaders.connection import ConnectionInfo
from spark_loaders.ingest import compact
from spark_loaders.ingest.compact import Partition, parse_list_bound, plan
from spark_loaders.ingest.ddl import ensure_schema
from spark_loaders.ingest.sink_postgres import remove_load

PROJECT = Path(__file__).resolve().parents[2]
UTC = dt.UTC


# ---- pure functions ----------------------------------------------------------------------


def test_parse_list_bound() -> None:
    assert parse_list_bound("FOR VALUES IN ('7')") == (7,)
    assert parse_list_bound("FOR VALUES IN ('12', '3', '40')") == (3, 12, 40)
    assert parse_list_bound("FOR VALUES IN (5, 6)") == (5, 6)
    with pytest.raises(ValueError):
        parse_list_bound("DEFAULT")


def _p(name: str, ids: tuple[int, ...], days_ago: float | None, *, merged=False, rows=10):
    now = dt.datetime(2026, 11, 30, tzinfo=UTC)
    finished = None if days_ago is None else now - dt.timedelta(days=days_ago)
    return Partition(name, ids, merged, finished, rows)


def test_plan_takes_old_partitions_in_load_order() -> None:
    cutoff = dt.datetime(2026, 11, 23, tzinfo=UTC)  # 7 days before "now"
    parts = [
        _p("t_l9", (9,), 8),
        _p("t_m2", (1, 2, 3), 30, merged=True),
        _p("t_l10", (10,), 1),  # too recent
        _p("t_l4", (4,), None),  # no ledger entry: never merged
    ]
    assert [p.name for p in plan(parts, cutoff, max_rows=1000)] == ["t_m2", "t_l9"]
    # A merged partition at the size cap is left alone; one partition alone is not merged.
    big = [_p("t_m2", (1, 2, 3), 30, merged=True, rows=1000), _p("t_l9", (9,), 8)]
    assert plan(big, cutoff, max_rows=1000) == []
    assert plan([_p("t_l9", (9,), 8)], cutoff, max_rows=1000) == []


# ---- against PostgreSQL ------------------------------------------------------------------

ALL_ROWS = "select * from bronze.transacoes order by _load_id, _source_line"


def partitions(db: ConnectionInfo) -> dict[str, str]:
    return dict(
        rows(
            db,
            "select c.relname, pg_get_expr(c.relpartbound, c.oid) from pg_inherits i "
            "join pg_class c on c.oid = i.inhrelid where i.inhparent = 'bronze.transacoes'::regclass",
        )
    )


def index_children(db: ConnectionInfo, parent_index: str) -> set[str]:
    return {
        r[0]
        for r in rows(
            db,
            "select t.relname from pg_inherits i join pg_index x on x.indexrelid = i.inhrelid "
            "join pg_class t on t.oid = x.indrelid where i.inhparent = %s::regclass",
            (f"bronze.{parent_index}",),
        )
    }


def make_loads(db: ConnectionInfo, count: int, per_load: int, first_id: int = 1) -> list[int]:
    with psycopg.connect(**db.psycopg_kwargs(), autocommit=True) as conn:
        ensure_schema(conn)
        return [
            bulk_load(
                conn,
                "transacoes",
                transactions_sql(first_id + k * per_load, per_load, units=500, people=700),
                source_file=f"transacoes_{k}.csv",
            )
            for k in range(count)
        ]


def compact_cli(*args: str) -> int:
    return cli.main(["bronze", "compact", "--entity", "transacoes", *args])


def test_compact_keeps_every_row_and_its_lineage(fresh_db, capsys) -> None:
    loads = make_loads(fresh_db, 4, 2_000)
    with psycopg.connect(**fresh_db.psycopg_kwargs()) as conn:  # a small load: default partition
        conn.execute(
            "insert into bronze.transacoes select 9001, 1, 1, date '2024-01-02', 5.00, "
            "'small.csv', 2, 999, now(), true"
        )
    before = rows(fresh_db, ALL_ROWS)
    assert len(before) == 8_001

    assert compact_cli("--dry-run", "--older-than", "0") == 0
    assert "would merge 4 partitions" in capsys.readouterr().out
    assert rows(fresh_db, ALL_ROWS) == before and len(partitions(fresh_db)) == 5

    assert compact_cli("--older-than", "0") == 0
    out = capsys.readouterr().out
    assert "merged 4 partitions (4 loads, 8,000 rows)" in out, out
    assert rows(fresh_db, ALL_ROWS) == before  # every column, lineage included
    layout = partitions(fresh_db)
    merged = next(name for name in layout if name.startswith("transacoes_m"))
    assert set(layout) == {"transacoes_default", merged}
    assert parse_list_bound(layout[merged]) == tuple(loads)
    # The parent's indexes have a child on the merged partition (adopted at ATTACH).
    for index in ("transacoes_id_idx", "transacoes_loaded_at_brin"):
        assert index_children(fresh_db, index) == {"transacoes_default", merged}
    ledger = rows(
        fresh_db,
        "select status, entity, partition_name, load_ids, rows_merged, source_partitions, "
        "lock_seconds < build_seconds + 1 from ops.compactions",
    )
    assert ledger == [
        (
            "compacted",
            "transacoes",
            f"bronze_loads.{merged}",
            loads,
            8_000,
            [f"transacoes_l{i}" for i in loads],
            True,
        )
    ]
    assert leftover_tables(fresh_db) == []
    assert scalar(fresh_db, "select count(*) from pg_locks where locktype = 'advisory'") == 0

    # A later load, compacted together with the merged partition.
    newer = make_loads(fresh_db, 1, 500, first_id=50_000)
    after_new_load = rows(fresh_db, ALL_ROWS)
    assert compact_cli("--older-than", "0") == 0
    layout = partitions(fresh_db)
    assert len(layout) == 2
    merged2 = next(name for name in layout if name.startswith("transacoes_m"))
    assert merged2 != merged and parse_list_bound(layout[merged2]) == (*loads, *newer)
    assert rows(fresh_db, ALL_ROWS) == after_new_load

    # Nothing old enough: nothing changes, and the command says so.
    make_loads(fresh_db, 1, 10, first_id=60_000)
    assert compact_cli("--older-than", "1") == 0
    assert "nothing to compact" in capsys.readouterr().out
    assert scalar(fresh_db, "select count(*) from ops.compactions") == 2


def test_force_reload_removes_a_merged_load(fresh_db) -> None:
    """The loader's remove_load (what `condo load --force` runs in its final transaction)
    deletes exactly the replaced load's rows from a merged partition."""
    loads = make_loads(fresh_db, 4, 25_000)  # large enough for an index to beat a scan
    assert compact_cli("--older-than", "0") == 0
    with psycopg.connect(**fresh_db.psycopg_kwargs()) as conn:
        plan_text = "\n".join(
            r[0]
            for r in conn.execute(
                "explain delete from bronze.transacoes where _load_id = %s", (loads[1],)
            )
        )
        remove_load(conn, "transacoes", loads[1])
    assert "load_id_brin" in plan_text, plan_text
    assert rows(
        fresh_db, "select _load_id, count(*) from bronze.transacoes group by 1 order by 1"
    ) == [(loads[0], 25_000), (loads[2], 25_000), (loads[3], 25_000)]


def test_swap_gives_up_when_readers_hold_the_table(fresh_db) -> None:
    make_loads(fresh_db, 2, 500)
    before = rows(fresh_db, ALL_ROWS)
    layout = partitions(fresh_db)
    with psycopg.connect(**fresh_db.psycopg_kwargs()) as reader:
        reader.execute("select count(*) from bronze.transacoes").fetchone()  # tx stays open
        code = compact_cli("--older-than", "0", "--lock-timeout", "0.2", "--lock-wait", "1")
        assert code == 1
    assert rows(fresh_db, ALL_ROWS) == before
    assert partitions(fresh_db) == layout
    failed = rows(fresh_db, "select status, error, partition_name from ops.compactions")
    assert len(failed) == 1 and failed[0][0] == "failed"
    assert "could not lock bronze.transacoes" in failed[0][1]
    # The merged table was rolled back with the transaction; a retry without readers works.
    assert leftover_tables(fresh_db) == []
    with psycopg.connect(**fresh_db.psycopg_kwargs()) as conn:
        checks = {c[0]: c[1:3] for c in compact.health(conn, since_hours=1, warn_partitions=3)}
    assert checks["compaction.transacoes"][0] == "warn"
    assert checks["bronze_partitions.transacoes"] == ("ok", "2 load partitions")
    assert compact_cli("--older-than", "0") == 0
    assert rows(fresh_db, ALL_ROWS) == before
    with psycopg.connect(**fresh_db.psycopg_kwargs()) as conn:
        checks = {c[0]: c[1:3] for c in compact.health(conn, since_hours=1, warn_partitions=1)}
    assert checks["compaction.transacoes"] == ("ok", "last compaction compacted")
    assert checks["bronze_partitions.transacoes"][0] == "warn"


def _compaction_step(db: ConnectionInfo) -> str | None:
    return scalar(
        db,
        "select coalesce(max(query), '') from pg_stat_activity "
        "where application_name = %s and state = 'active'",
        (compact.APPLICATION_NAME,),
    )


@pytest.mark.slow
def test_sigkill_mid_compaction_changes_nothing(fresh_db, tmp_path, test_state_dir) -> None:
    make_loads(fresh_db, 20, 50_000)
    fingerprint = (
        "select count(*), sum(hashtext(t::text)::numeric), count(distinct _load_id) "
        "from bronze.transacoes as t"
    )
    before = rows(fresh_db, fingerprint)
    layout = partitions(fresh_db)
    env = {**os.environ, "CONDO_DATABASE_URL": fresh_db.url()}
    log = (tmp_path / "compact.log").open("w")
    process = subprocess.Popen(
        [sys.executable, "-m", "spark_loaders.cli", "bronze", "compact", "--older-than", "0"],
        cwd=PROJECT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 120
        while "into bronze_loads.transacoes_m" not in (_compaction_step(fresh_db) or ""):
            assert process.poll() is None, (tmp_path / "compact.log").read_text()[-3000:]
            assert time.monotonic() < deadline, "the compaction never started copying"
            time.sleep(0.05)
        # Readers are not blocked while the merged table is being built.
        with psycopg.connect(**fresh_db.psycopg_kwargs()) as reader:
            reader.execute("set lock_timeout = '1s'")
            assert (
                reader.execute("select count(*) from bronze.transacoes").fetchone()[0]
                == (before[0][0])
            )
    finally:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()
    # The server notices the dead client (client_connection_check_interval) and rolls back.
    deadline = time.monotonic() + 60
    while scalar(
        fresh_db,
        "select count(*) from pg_stat_activity where application_name = %s",
        (compact.APPLICATION_NAME,),
    ):
        assert time.monotonic() < deadline, "the killed compaction's backend did not end"
        time.sleep(0.1)

    assert rows(fresh_db, fingerprint) == before
    assert partitions(fresh_db) == layout
    assert scalar(fresh_db, "select count(*) from ops.compactions") == 0
    assert leftover_tables(fresh_db) == []
    assert scalar(fresh_db, "select count(*) from pg_locks where locktype = 'advisory'") == 0

    assert compact_cli("--older-than", "0") == 0
    assert rows(fresh_db, fingerprint) == before
    assert len(partitions(fresh_db)) == 2
