"""Bronze access indexes through real Spark and PostgreSQL: the partitioned BRIN on
``_loaded_at`` and btree on the id column, their prebuilt twins on a bulk load's staging
table (adopted by ATTACH PARTITION, not rebuilt), the plans that use them, and the upgrade of
a database created by a loader that had no indexes."""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import psycopg
import pytest
from load_helpers import load, rows, scalar, write
from pg_helpers import scratch_database

from spark_loaders.connection import ConnectionInfo
from spark_loaders.domain import ENTITIES
from spark_loaders.ingest import file_load
from spark_loaders.ingest.ddl import LOCK_NAMESPACE, ensure_schema, entity_lock_key
from spark_loaders.ingest.report import IngestReport

SAMPLE = Path(__file__).resolve().parents[2] / "data" / "sample"
BIG_ROWS = 60_000  # enough pages for the planner to prefer an index to a scan
LATE_ROWS = 7


def write_transactions(path: Path, first_id: int, n: int) -> Path:
    lines = ["transacao_id,imovel_id,morador_id,data_transacao,valor_transacao"]
    lines += [
        f"{i},{i % 50 + 1},{i % 70 + 1},2024-{i % 12 + 1:02d}-{i % 28 + 1:02d},{i % 900 + 1}.50"
        for i in range(first_id, first_id + n)
    ]
    return write(path, "\n".join(lines) + "\n")


def partitions(db: ConnectionInfo, entity: str) -> set[str]:
    return {
        r[0]
        for r in rows(
            db,
            "select c.relname from pg_inherits i join pg_class c on c.oid = i.inhrelid "
            "where i.inhparent = %s::regclass",
            (f"bronze.{entity}",),
        )
    }


def parent_indexes(db: ConnectionInfo, entity: str) -> set[tuple[str, str, str, str]]:
    """(index name, relkind, access method, indexed column) of the bronze parent."""
    return set(
        rows(
            db,
            """
            select ic.relname, ic.relkind::text, am.amname, a.attname
            from pg_index x
            join pg_class ic on ic.oid = x.indexrelid
            join pg_am am on am.oid = ic.relam
            join pg_attribute a on a.attrelid = x.indrelid and a.attnum = x.indkey[0]
            where x.indrelid = %s::regclass
            """,
            (f"bronze.{entity}",),
        )
    )


def attached_children(db: ConnectionInfo, parent_index: str) -> dict[str, str]:
    """partition table -> its index attached to the given bronze parent index."""
    return dict(
        rows(
            db,
            """
            select t.relname, ic.relname
            from pg_inherits i
            join pg_class ic on ic.oid = i.inhrelid
            join pg_index x on x.indexrelid = ic.oid
            join pg_class t on t.oid = x.indrelid
            where i.inhparent = %s::regclass
            """,
            (f"bronze.{parent_index}",),
        )
    )


def expected_parent_indexes(entity) -> set[tuple[str, str, str, str]]:
    return {
        (f"{entity.name}_loaded_at_brin", "I", "brin", "_loaded_at"),
        (f"{entity.name}_id_idx", "I", "btree", entity.id_column),
    }


def assert_fully_indexed(db: ConnectionInfo) -> None:
    for entity in ENTITIES:
        assert parent_indexes(db, entity.name) == expected_parent_indexes(entity)
        tables = partitions(db, entity.name)
        assert f"{entity.name}_default" in tables
        for suffix in ("loaded_at_brin", "id_idx"):
            children = attached_children(db, f"{entity.name}_{suffix}")
            assert set(children) == tables, (entity.name, suffix)


@dataclass
class Loaded:
    db: ConnectionInfo
    bulk: IngestReport
    late: IngestReport
    # load id -> indexes of its staging table when the final transaction began
    staging_indexes_at_publish: dict[int, list[str]] = field(default_factory=dict)

    def load_id(self, file_name: str) -> int:
        for report in (self.bulk, self.late):
            for result in report.files:
                if result.path.name == file_name:
                    return result.load_id
        raise KeyError(file_name)


@pytest.fixture(scope="module")
def loaded(pg_server, spark, tmp_path_factory) -> Loaded:
    """The sample plus a 60k-row transacoes file on the bulk path (one partition per file),
    then a small transacoes file on the direct path (default partition)."""
    folder = tmp_path_factory.mktemp("indexes")
    for entity in ENTITIES:
        write(folder / f"{entity.name}.csv", (SAMPLE / f"{entity.name}.csv").read_bytes())
    write_transactions(folder / "transacoes_big.csv", 1_000, BIG_ROWS)
    late = write_transactions(tmp_path_factory.mktemp("late") / "transacoes_late.csv", 900_000, 7)
    seen: dict[int, list[str]] = {}
    real_publish = file_load.publish_bulk

    def spying_publish(conn, staging):
        seen[staging.load_id] = [
            r[0]
            for r in conn.execute(
                "select indexrelid::regclass::text from pg_index "
                "where indrelid = %s::regclass order by 1",
                (staging.data,),
            ).fetchall()
        ]
        real_publish(conn, staging)

    with scratch_database(pg_server, "t_idx") as info, pytest.MonkeyPatch.context() as mp:
        mp.setenv("CONDO_DATABASE_URL", info.url())
        mp.setattr(file_load, "publish_bulk", spying_publish)
        mp.setenv("CONDO_LOAD_PARALLEL_MIN_BYTES", "0")
        mp.setenv("CONDO_LOAD_BULK_MIN_BYTES", "0")
        bulk = load(spark, folder)
        mp.setenv("CONDO_LOAD_BULK_MIN_BYTES", str(1 << 30))
        late_report = load(spark, late)
        assert bulk.ok and late_report.ok
        yield Loaded(info, bulk, late_report, seen)


def test_every_bronze_table_has_both_partitioned_indexes(loaded: Loaded) -> None:
    assert_fully_indexed(loaded.db)


def test_bulk_partitions_adopt_the_prebuilt_indexes(loaded: Loaded) -> None:
    assert len(loaded.staging_indexes_at_publish) == len(loaded.bulk.files) == 5
    for result in loaded.bulk.files:
        table = f"{result.entity}_l{result.load_id}"
        # The btree was built before the final transaction, the BRIN not yet (it needs
        # _loaded_at, which the final transaction adds).
        assert loaded.staging_indexes_at_publish[result.load_id] == [f"bronze_loads.{table}_id_idx"]
        # After ATTACH the partition's indexes are those ones (an index that ATTACH had to
        # build would carry a generated name such as <table>__loaded_at_idx).
        assert attached_children(loaded.db, f"{result.entity}_id_idx")[table] == f"{table}_id_idx"
        brin = attached_children(loaded.db, f"{result.entity}_loaded_at_brin")[table]
        assert brin == f"{table}_loaded_at_brin"
        indexes = scalar(
            loaded.db,
            "select count(*) from pg_index where indrelid = %s::regclass",
            (f"bronze_loads.{table}",),
        )
        assert indexes == 2  # nothing built twice


def test_new_partitions_have_statistics_for_the_planner(loaded: Loaded) -> None:
    table = f"transacoes_l{loaded.load_id('transacoes_big.csv')}"
    analyzed = rows(
        loaded.db,
        "select attname from pg_stats where schemaname = 'bronze_loads' and tablename = %s "
        "and attname in ('_loaded_at', 'transacao_id') order by 1",
        (table,),
    )
    assert analyzed == [("_loaded_at",), ("transacao_id",)]


def _plan(db: ConnectionInfo, sql: str, params: tuple) -> list[dict]:
    """The plan nodes (flattened) that read a relation."""
    plan = scalar(db, f"explain (format json) {sql}", params)
    plan = plan if isinstance(plan, list) else json.loads(plan)
    nodes, stack = [], [plan[0]["Plan"]]
    while stack:
        node = stack.pop()
        nodes.append(node)
        stack.extend(node.get("Plans", []))
    return nodes


def test_rows_loaded_since_t_use_the_brin(loaded: Loaded) -> None:
    big = loaded.load_id("transacoes_big.csv")
    since = scalar(
        loaded.db, "select max(_loaded_at) from bronze.transacoes where _load_id = %s", (big,)
    )
    sql = "select * from bronze.transacoes where _loaded_at > %s"
    nodes = _plan(loaded.db, sql, (since,))
    used = {n["Index Name"] for n in nodes if n["Node Type"] == "Bitmap Index Scan"}
    assert f"transacoes_l{big}_loaded_at_brin" in used
    scanned = {n["Relation Name"] for n in nodes if n["Node Type"] == "Seq Scan"}
    assert f"transacoes_l{big}" not in scanned
    # and the answer is right: exactly the late file's rows
    got = rows(loaded.db, f"select _source_file, count(*) from ({sql}) s group by 1", (since,))
    assert got == [("transacoes_late.csv", LATE_ROWS)]


def test_versions_of_a_set_of_ids_use_the_btree(loaded: Loaded) -> None:
    big = loaded.load_id("transacoes_big.csv")
    ids = [1_000, 30_000, 59_999, 900_003]
    sql = "select transacao_id, _load_id from bronze.transacoes where transacao_id = any(%s)"
    nodes = _plan(loaded.db, sql, (ids,))
    used = {n.get("Index Name") for n in nodes}
    assert f"transacoes_l{big}_id_idx" in used
    assert f"transacoes_l{big}" not in {
        n["Relation Name"] for n in nodes if n["Node Type"] == "Seq Scan"
    }
    late = loaded.load_id("transacoes_late.csv")
    got = sorted(rows(loaded.db, sql, (ids,)))
    assert got == [(1_000, big), (30_000, big), (59_999, big), (900_003, late)]


def _drop_bronze_indexes(db: ConnectionInfo) -> None:
    with psycopg.connect(**db.psycopg_kwargs(), autocommit=True) as conn:
        for entity in ENTITIES:
            conn.execute(f"drop index bronze.{entity.name}_loaded_at_brin")
            conn.execute(f"drop index bronze.{entity.name}_id_idx")


def test_a_database_from_before_the_indexes_gets_them_on_the_next_load(
    spark, fresh_db, tmp_path, monkeypatch
) -> None:
    monkeypatch.setenv("CONDO_LOAD_PARALLEL_MIN_BYTES", "0")
    monkeypatch.setenv("CONDO_LOAD_BULK_MIN_BYTES", "0")
    first = load(spark, SAMPLE / "transacoes.csv", SAMPLE / "moradores.csv")
    monkeypatch.setenv("CONDO_LOAD_BULK_MIN_BYTES", str(1 << 30))
    small = load(spark, write_transactions(tmp_path / "transacoes_small.csv", 500, 3))
    assert first.ok and small.ok
    # What an older loader left: the same tables and partitions, no index on bronze.
    _drop_bronze_indexes(fresh_db)
    assert (
        scalar(
            fresh_db,
            "select count(*) from pg_indexes where schemaname in ('bronze', 'bronze_loads') "
            "and tablename <> 'rejected_rows'",
        )
        == 0
    )
    before = rows(
        fresh_db, "select _load_id, count(*) from bronze.transacoes group by 1 order by 1"
    )

    monkeypatch.setenv("CONDO_LOAD_BULK_MIN_BYTES", "0")
    later = load(spark, SAMPLE / "condominios.csv")
    assert later.ok
    assert_fully_indexed(fresh_db)
    old_partition = f"transacoes_l{first.files[1].load_id}"
    assert first.files[1].entity == "transacoes"
    assert old_partition in attached_children(fresh_db, "transacoes_id_idx")
    after = rows(fresh_db, "select _load_id, count(*) from bronze.transacoes group by 1 order by 1")
    assert after == before


def _in_thread(target) -> tuple[threading.Thread, list[BaseException]]:
    errors: list[BaseException] = []

    def run() -> None:
        try:
            target()
        except BaseException as exc:  # reported to the test
            errors.append(exc)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread, errors


def test_ensure_schema_waits_for_running_loads_only_when_it_has_work(fresh_db) -> None:
    kwargs = fresh_db.psycopg_kwargs()
    told: list[str] = []

    def ensure() -> None:
        with psycopg.connect(**kwargs, autocommit=True) as conn:
            ensure_schema(conn, on_wait=told.append)

    ensure()
    with psycopg.connect(**kwargs, autocommit=True) as running_load:
        # A load of transacoes in progress holds its entity's advisory lock.
        running_load.execute(
            "select pg_advisory_lock(%s, %s)", (LOCK_NAMESPACE, entity_lock_key("transacoes"))
        )
        # Complete schema: nothing to do, no waiting.
        thread, errors = _in_thread(ensure)
        thread.join(timeout=10)
        assert not thread.is_alive() and not errors
        assert told == []

        # Missing index: ensure_schema waits for the load before creating it...
        _drop_bronze_indexes(fresh_db)
        thread, errors = _in_thread(ensure)
        time.sleep(1.0)
        assert thread.is_alive()
        waiting = scalar(
            fresh_db,
            "select count(*) from pg_locks where locktype = 'advisory' and not granted",
        )
        assert waiting == 1
        assert told == [
            "updating the bronze schema: waiting for the running load of transacoes to finish"
        ]
        # ...and creates it once the load has finished.
        running_load.execute("select pg_advisory_unlock_all()")
        thread.join(timeout=30)
        assert not thread.is_alive() and not errors
    assert_fully_indexed(fresh_db)
