"""The vectorised bulk path end to end: the same files loaded with it and with the Spark path
(``CONDO_LOAD_VECTORISED=0``) into two fresh databases leave the same bronze rows, the same
quarantine and the same ledger, row for row. Real Spark, real PostgreSQL."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from defect_rows import write_defect_file
from load_helpers import load, rows
from pg_helpers import scratch_database

from spark_loaders.domain import BY_NAME

pytestmark = pytest.mark.spark

FILES = [  # entity, ids in the file, CRLF, final newline
    ("condominios", True, False, True),
    ("imoveis", False, True, True),
    ("moradores", True, False, False),
    ("transacoes", False, False, True),
]


def _snapshot(db, entity: str) -> dict:
    columns = ", ".join(c.name for c in BY_NAME[entity].columns)
    return {
        "bronze": rows(
            db,
            f"select {columns}, _source_file, _source_line, _load_id, _repaired "
            f"from bronze.{entity} order by _source_line",
        ),
        "rejected": rows(
            db,
            "select source_line, raw_line, reasons, source_file, load_id "
            "from bronze.rejected_rows where entity = %s order by source_line",
            (entity,),
        ),
        "ledger": rows(
            db,
            "select status, rows_read, rows_loaded, rows_rejected, rows_repaired, "
            "rejects_by_reason, id_min, id_max, has_ids from ops.loads where entity = %s",
            (entity,),
        ),
        "partitions": rows(
            db,
            "select count(*) from pg_inherits i join pg_class c on c.oid = i.inhrelid "
            "where i.inhparent = %s::regclass and c.relname <> %s",
            (f"bronze.{entity}", f"{entity}_default"),
        ),
    }


def _load_all(spark, pg_server, folder: Path, monkeypatch, vectorised: bool):
    with scratch_database(pg_server, "t_vec") as db:
        monkeypatch.setenv("CONDO_DATABASE_URL", db.url())
        monkeypatch.setenv("CONDO_LOAD_BULK_MIN_BYTES", "0")
        monkeypatch.setenv("CONDO_LOAD_PARALLEL_MIN_BYTES", "0")
        monkeypatch.setenv("CONDO_LOAD_VECTORISED", "1" if vectorised else "0")
        report = load(spark, *sorted(folder.iterdir()))
        return report, {entity: _snapshot(db, entity) for entity, *_ in FILES}


def test_vectorised_and_spark_paths_load_the_same(spark, pg_server, tmp_path, monkeypatch):
    for seed, (entity, ids, crlf, final_newline) in enumerate(FILES):
        write_defect_file(
            tmp_path / f"{entity}.csv",
            entity,
            ids=ids,
            rows=3000,
            seed=seed,
            crlf=crlf,
            final_newline=final_newline,
        )
    spark_report, expected = _load_all(spark, pg_server, tmp_path, monkeypatch, False)
    vec_report, got = _load_all(spark, pg_server, tmp_path, monkeypatch, True)
    assert {f.parser for f in vec_report.files} == {"vectorised"}
    assert "vectorised" not in {f.parser for f in spark_report.files}
    assert [f.status for f in vec_report.files] == ["loaded"] * len(FILES)
    for entity, *_ in FILES:
        snapshot = expected[entity]
        assert snapshot["bronze"] and snapshot["rejected"], "each file has rows and rejects"
        assert snapshot["partitions"] == [(1,)], "each file was a bulk load of its own"
        for part in ("bronze", "rejected", "ledger", "partitions"):
            assert got[entity][part] == snapshot[part], f"{entity}: {part}"


def test_which_files_take_the_vectorised_path(spark, pg_server, tmp_path, monkeypatch):
    """Header-only files load zero rows through it; a quote, a blank line or a lone CR sends
    the file to the Spark path, which alone implements those parts of the dialect."""
    header = "imovel_id,morador_id,data_transacao,valor_transacao"
    files = {
        "transacoes_empty.csv": f"{header}\n",
        "transacoes_quoted.csv": f'{header}\n1,2,2024-01-01,"5.00"\n',
        "transacoes_blank.csv": f"{header}\n1,2,2024-01-01,5.00\n\n1,2,2024-01-02,6.00\n",
        "transacoes_cr.csv": f"{header}\n1,2,2024-01-01,5.00\r1,2,2024-01-02,6.00\n",
        "transacoes_plain.csv": f"{header}\r\n1,2,2024-01-01,5.00\r\n1,2,2024-01-02,6.00\r\n",
    }
    for name, text in files.items():
        (tmp_path / name).write_bytes(text.encode())
    with scratch_database(pg_server, "t_vec") as db:
        monkeypatch.setenv("CONDO_DATABASE_URL", db.url())
        monkeypatch.setenv("CONDO_LOAD_BULK_MIN_BYTES", "0")
        monkeypatch.setenv("CONDO_LOAD_PARALLEL_MIN_BYTES", "0")
        report = load(spark, *[tmp_path / name for name in files])
        by_name = {f.path.name: f for f in report.files}
        assert {n: f.status for n, f in by_name.items()} == dict.fromkeys(files, "loaded")
        parsers = {n: f.parser for n, f in by_name.items()}
        assert parsers["transacoes_empty.csv"] == "vectorised"
        assert parsers["transacoes_plain.csv"] == "vectorised"
        for name in ("transacoes_quoted.csv", "transacoes_blank.csv", "transacoes_cr.csv"):
            assert parsers[name] != "vectorised", name
        # The ledger keeps it, for whoever asks later why a load took the time it took.
        assert dict(rows(db, "select source_file, parser from ops.loads")) == parsers
        assert None not in parsers.values()
        assert by_name["transacoes_empty.csv"].rows_read == 0
        # The lone CR is data, not a line end: one line of seven fields, rejected.
        assert by_name["transacoes_cr.csv"].rows_rejected == 1
        assert by_name["transacoes_plain.csv"].rows_loaded == 2


def test_condo_load_starts_spark_only_for_a_file_that_needs_it(pg_server, tmp_path):
    """`condo load` in local mode: a quote-free bulk file loads in-process without starting
    Spark; a file with quotes starts it (the log says when)."""
    header = "imovel_id,morador_id,data_transacao,valor_transacao"
    plain = tmp_path / "plain" / "transacoes.csv"
    quoted = tmp_path / "quoted" / "transacoes.csv"
    for path, amount in ((plain, "5.00"), (quoted, '"5.00"')):
        path.parent.mkdir()
        path.write_text(f"{header}\n1,2,2024-01-01,{amount}\n3,4,2024-01-02,x\n")
    with scratch_database(pg_server, "t_vec") as db:
        env = {
            **os.environ,
            "CONDO_DATABASE_URL": db.url(),
            "CONDO_LOAD_BULK_MIN_BYTES": "0",
            "CONDO_SPARK_MASTER": "local[2]",
            "CONDO_SPARK_DIR": str(tmp_path / "spark"),
        }
        runs = {}
        for path in (plain, quoted):
            runs[path] = subprocess.run(
                [sys.executable, "-m", "spark_loaders.cli", "load", str(path)],
                env=env,
                capture_output=True,
                text=True,
                timeout=300,
            )
            assert runs[path].returncode == 0, runs[path].stderr
        assert "starting Spark" not in runs[plain].stderr
        assert "starting Spark" in runs[quoted].stderr
        loaded = rows(db, "select source_file, rows_loaded, rows_rejected from ops.loads")
        assert sorted(loaded) == [("transacoes.csv", 1, 1), ("transacoes.csv", 1, 1)]


def test_a_file_changed_while_the_btree_is_built_is_not_published(
    spark, pg_server, tmp_path, monkeypatch
):
    """The re-check of the bytes runs in a thread beside the id btree: a change it finds
    there must still fail the load as changed_during_load, with nothing in bronze."""
    import threading

    from spark_loaders.ingest import file_load, sink_postgres

    header = "imovel_id,morador_id,data_transacao,valor_transacao"
    path = tmp_path / "transacoes_live.csv"
    path.write_bytes(f"{header}\n1,2,2024-01-01,5.00\n1,2,2024-01-02,6.00\n".encode())
    build_btree = sink_postgres.prebuild_indexes
    verify_unchanged = file_load.verify_unchanged
    appended = threading.Event()

    def exporter_appends_meanwhile(conn, staging):
        with path.open("ab") as handle:
            handle.write(b"1,2,2024-01-03,7.00\n")
        appended.set()
        build_btree(conn, staging)

    def recheck_after_the_append(*args):
        # The two run at once; without this the re-check of a 3-line file may finish
        # before the append, and the load then rightly publishes the bytes it read.
        assert appended.wait(60)
        verify_unchanged(*args)

    with scratch_database(pg_server, "t_vec") as db:
        monkeypatch.setenv("CONDO_DATABASE_URL", db.url())
        monkeypatch.setenv("CONDO_LOAD_BULK_MIN_BYTES", "0")
        monkeypatch.setattr(sink_postgres, "prebuild_indexes", exporter_appends_meanwhile)
        monkeypatch.setattr(file_load, "verify_unchanged", recheck_after_the_append)
        report = load(spark, path)
        result = report.files[0]
        assert result.parser == "vectorised"
        assert (result.status, result.reason) == ("failed", "changed_during_load")
        assert rows(db, "select count(*) from bronze.transacoes") == [(0,)]
        assert rows(db, "select status, reason, parser from ops.loads") == [
            ("failed", "changed_during_load", "vectorised")
        ]
