"""Streaming ingestion through the real stack: the shared SparkSession runs the query in this
process, the real batch loader writes to a fresh PostgreSQL database."""

from __future__ import annotations

import json
import os
import shutil
import threading
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

import psycopg
import pytest

from spark_loaders import jobs
from spark_loaders.domain import ENTITY_ORDER
from spark_loaders.errors import CondoError
from spark_loaders.streaming import run as stream_run
from spark_loaders.streaming.batch import StreamFailed
from spark_loaders.streaming.run import StreamConfig, run_stream

SAMPLE = Path(__file__).resolve().parents[2] / "data" / "sample"


def drop(landing: Path, name: str, data: bytes) -> Path:
    """Land a file the documented way: write it under a hidden name, then rename it in."""
    tmp = landing / f".{name}.tmp"
    tmp.write_bytes(data)
    os.replace(tmp, landing / name)
    return landing / name


def config(base: Path, **overrides: Any) -> StreamConfig:
    (base / "landing").mkdir(parents=True, exist_ok=True)
    values: dict[str, Any] = {
        "landing": str(base / "landing"),
        "checkpoint": str(base / "checkpoint"),
        "archive": str(base / "processed"),
        "rejected": base / "rejected",
        "status_file": base / "status.json",
        "trigger_seconds": 0.5,
        "available_now": True,
        "max_files_per_trigger": 3,
    }
    values.update(overrides)
    return StreamConfig(**values)


def counts(conn: psycopg.Connection) -> dict[str, int]:
    return {e: conn.execute(f"select count(*) from bronze.{e}").fetchone()[0] for e in ENTITY_ORDER}


def duplicated_lines(conn: psycopg.Connection) -> int:
    total = 0
    for e in ENTITY_ORDER:
        total += conn.execute(
            f"select count(*) - count(distinct (_source_file, _source_line)) from bronze.{e}"
        ).fetchone()[0]
    return total


def wait_for(predicate: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(0.1)


class Background:
    """``run_stream`` in a thread, stopped through the same event the signal handlers set."""

    def __init__(self, spark: Any, cfg: StreamConfig) -> None:
        self.stop = threading.Event()
        self.result: Any = None
        self.error: BaseException | None = None
        self.lines: list[str] = []

        def target() -> None:
            try:
                self.result = run_stream(spark, cfg, stop=self.stop, log=self.lines.append)
            except BaseException as exc:
                self.error = exc

        self.thread = threading.Thread(target=target, daemon=True)
        self.thread.start()

    def finish(self, timeout: float = 60) -> Any:
        self.stop.set()
        self.thread.join(timeout)
        assert not self.thread.is_alive(), "the stream did not stop"
        return self.result


def test_available_now_backlog_rules_rejects_and_duplicates(spark, fresh_db, tmp_path: Path):
    cfg = config(tmp_path)
    landing = Path(cfg.landing)
    for e in ENTITY_ORDER:
        drop(landing, f"{e}.csv", (SAMPLE / f"{e}.csv").read_bytes())
    # Same bytes under another name: ingested once.
    drop(landing, "transacoes_copy.csv", (SAMPLE / "transacoes.csv").read_bytes())
    # Row-level quarantine next to good rows.
    drop(
        landing,
        "transacoes_extra.csv",
        b"imovel_id,morador_id,data_transacao,valor_transacao\n"
        b"1,1,2024-03-01,100.00\n2,2,2024-02-30,50.00\n3,3,2024-03-03,-10\n",
    )
    # Whole-file rejects: a missing column and a file that is not UTF-8.
    drop(landing, "moradores_bad.csv", b"nome,condominio_id\nAna,1\n")
    drop(
        landing, "condominios_latin1.csv", "nome,endereco\nS\xe3o Jo\xe3o,Rua A\n".encode("latin-1")
    )
    # Not an extract of any entity.
    drop(landing, "notes.csv", b"a,b\n1,2\n")

    result = run_stream(spark, cfg, log=print)

    with psycopg.connect(fresh_db.url()) as conn:
        assert counts(conn) == {"condominios": 3, "imoveis": 36, "moradores": 39, "transacoes": 23}
        assert duplicated_lines(conn) == 0
        assert conn.execute(
            "select condominio_id, endereco, _repaired from bronze.condominios order by 1"
        ).fetchall() == [
            (1, "Rua das Palmeiras, 123, Centro", True),
            (2, "Avenida das Flores, 456, Jardim Primavera", True),
            (3, "Travessa do Sol, 789, Vila Esperança", True),
        ]
        assert [
            r[0] for r in conn.execute("select morador_id from bronze.moradores order by 1")
        ] == [*range(1, 40)]
        rejects = conn.execute(
            "select source_file, source_line, reasons from bronze.rejected_rows order by 2"
        ).fetchall()
        assert rejects == [
            ("transacoes_extra.csv", 3, ["invalid_date"]),
            ("transacoes_extra.csv", 4, ["invalid_amount"]),
        ]
        ledger = dict(
            conn.execute(
                "select source_file, status from ops.loads where mode = 'stream'"
            ).fetchall()
        )
        # Whichever copy Spark listed first is loaded; the other is skipped by content hash.
        assert sorted([ledger["transacoes.csv"], ledger["transacoes_copy.csv"]]) == [
            "loaded",
            "skipped",
        ]
        assert ledger["moradores_bad.csv"] == ledger["condominios_latin1.csv"] == "rejected"
        assert "notes.csv" not in ledger
        # Within a micro-batch, entities are applied in dependency order whatever the landing
        # order (moradores_bad.csv landed before condominios_latin1.csv in the same batch).
        rank = {e: i for i, e in enumerate(ENTITY_ORDER)}
        applied = conn.execute(
            "select stream_batch_id, entity from ops.loads where mode = 'stream' order by load_id"
        ).fetchall()
        for batch_id in {b for b, _ in applied}:
            sequence = [rank[e] for b, e in applied if b == batch_id]
            assert sequence == sorted(sequence), (batch_id, applied)
        batches = conn.execute(
            "select batch_id, files_total, rows_read, rows_loaded, rows_rejected, attempts "
            "from ops.stream_batches order by batch_id"
        ).fetchall()
    # 9 files, at most 3 per micro-batch.
    assert [b[0] for b in batches] == [0, 1, 2]
    assert [b[1] for b in batches] == [3, 3, 3]
    assert sum(b[2] for b in batches) == 3 + 36 + 39 + 22 + 3
    assert sum(b[3] for b in batches) == 3 + 36 + 39 + 23
    assert sum(b[4] for b in batches) == 2
    assert all(b[5] == 1 for b in batches)
    assert result.totals["files_rejected"] == 3 and result.exit_code == 1

    rejected = sorted(p.name for p in cfg.rejected.iterdir())
    assert rejected == [
        "condominios_latin1.csv",
        "condominios_latin1.csv.reason.txt",
        "moradores_bad.csv",
        "moradores_bad.csv.reason.txt",
        "notes.csv",
        "notes.csv.reason.txt",
    ]
    assert "data_registro" in (cfg.rejected / "moradores_bad.csv.reason.txt").read_text()
    status = json.loads(cfg.status_file.read_text())
    assert status["state"] == "stopped" and status["totals"]["rows_loaded"] == 3 + 36 + 39 + 23

    # A later run picks up nothing again; it archives what the last micro-batch left behind.
    drop(
        landing,
        "transacoes_later.csv",
        b"imovel_id,morador_id,data_transacao,valor_transacao\n4,4,2024-04-01,10.00\n",
    )
    again = run_stream(spark, cfg, log=lambda _line: None)
    assert again.totals["files"] == 1 and again.totals["rows_loaded"] == 1
    with psycopg.connect(fresh_db.url()) as conn:
        assert counts(conn)["transacoes"] == 24
        assert duplicated_lines(conn) == 0
    archived = {p.name for p in Path(cfg.archive).rglob("*.csv")}
    assert {"condominios.csv", "transacoes_copy.csv", "notes.csv"} <= archived


def test_files_dropped_while_running_and_graceful_stop(
    spark, fresh_db, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    port = _free_port()
    cfg = config(tmp_path, available_now=False, trigger_seconds=0.5, http_port=port)
    landing = Path(cfg.landing)
    monkeypatch.setattr(stream_run.IgnoredFileWatcher, "interval_seconds", 0.5)
    bg = Background(spark, cfg)
    try:
        wait_for(lambda: (Path(cfg.checkpoint) / "metadata").exists(), 60, "the query to start")
        for e in ENTITY_ORDER:
            drop(landing, f"{e}.csv", (SAMPLE / f"{e}.csv").read_bytes())
            time.sleep(0.3)

        def loaded() -> bool:
            with psycopg.connect(fresh_db.url()) as conn:
                return sum(counts(conn).values()) == 3 + 36 + 39 + 22

        wait_for(loaded, 60, "the sample to reach bronze")
        # The same file landing again under a new name: skipped by content hash.
        drop(landing, "condominios_again.csv", (SAMPLE / "condominios.csv").read_bytes())
        wait_for(
            lambda: json.loads(cfg.status_file.read_text())["totals"]["files_skipped"] == 1,
            60,
            "the second copy to be skipped",
        )
        # The same name landing again later, once Spark archived the first one: Spark's file
        # source ignores re-used names, so the job must say so instead of staying silent.
        archived = Path(cfg.archive) / Path(cfg.landing).relative_to("/") / "condominios.csv"
        wait_for(archived.exists, 30, "condominios.csv to be archived")
        drop(landing, "condominios.csv", (SAMPLE / "condominios.csv").read_bytes())
        wait_for(
            lambda: (
                json.loads(cfg.status_file.read_text())["ignored_files"]
                == [str((landing / "condominios.csv").resolve())]
            ),
            30,
            "the re-used name to be reported",
        )
        assert any("reuses the name" in line for line in bg.lines)
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/status", timeout=5) as resp:
            served = json.loads(resp.read())
        assert served["state"] in ("running", "idle")
        assert served["totals"]["files"] == 5 and served["totals"]["files_skipped"] == 1
        assert (
            served["query_id"] == json.loads((Path(cfg.checkpoint) / "metadata").read_text())["id"]
        )
    finally:
        result = bg.finish()
    assert bg.error is None, bg.error
    assert result.stopped_by_signal
    assert any(line.startswith("batch ") and "latency" in line for line in bg.lines)
    with psycopg.connect(fresh_db.url()) as conn:
        assert counts(conn) == {"condominios": 3, "imoveis": 36, "moradores": 39, "transacoes": 22}
        assert duplicated_lines(conn) == 0
    _assert_checkpoint_consistent(Path(cfg.checkpoint))
    assert json.loads(cfg.status_file.read_text())["state"] == "stopped"


def _assert_checkpoint_consistent(checkpoint: Path) -> None:
    offsets = {p.name for p in (checkpoint / "offsets").iterdir() if p.name.isdigit()}
    commits = {p.name for p in (checkpoint / "commits").iterdir() if p.name.isdigit()}
    assert offsets and offsets == commits, (offsets, commits)


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def own_pg(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch):
    """A dedicated embedded server that the test may stop and start; CONDO_DATABASE_URL points
    at it, so nothing restarts it behind the test's back."""
    from spark_loaders import embedded_pg

    state = tmp_path_factory.mktemp("own-pg")
    previous = os.environ["CONDO_STATE_DIR"]

    def in_state(action: Callable[[], Any]) -> Any:
        os.environ["CONDO_STATE_DIR"] = str(state)
        try:
            return action()
        finally:
            os.environ["CONDO_STATE_DIR"] = previous

    info = in_state(embedded_pg.ensure_running)
    monkeypatch.setenv("CONDO_DATABASE_URL", info.url())

    class Server:
        url = info.url()

        @staticmethod
        def stop() -> None:
            in_state(embedded_pg.stop)

        @staticmethod
        def start() -> None:
            in_state(embedded_pg.ensure_running)

    yield Server
    in_state(embedded_pg.stop)
    shutil.rmtree(state, ignore_errors=True)


def test_postgres_restart_during_the_stream(spark, own_pg, tmp_path: Path):
    cfg = config(tmp_path, available_now=False, trigger_seconds=0.5, max_files_per_trigger=2)
    landing = Path(cfg.landing)
    header = b"imovel_id,morador_id,data_transacao,valor_transacao\n"

    def rows(n: int, day: int) -> bytes:
        return header + b"".join(
            b"%d,%d,2024-01-%02d,%d.50\n" % (i + 1, i + 1, day, i + 1) for i in range(n)
        )

    def bronze_rows() -> int:
        try:
            with psycopg.connect(own_pg.url, connect_timeout=2) as conn:
                return conn.execute("select count(*) from bronze.transacoes").fetchone()[0]
        except psycopg.Error:  # server down, or the schema not created yet
            return -1

    bg = Background(spark, cfg)
    try:
        drop(landing, "transacoes_a.csv", rows(10, 1))
        wait_for(lambda: bronze_rows() == 10, 60, "the first file")
        own_pg.stop()
        drop(landing, "transacoes_b.csv", rows(20, 2))
        drop(landing, "transacoes_c.csv", rows(30, 3))
        wait_for(lambda: any("PostgreSQL unavailable" in line for line in bg.lines), 30, "a retry")
        own_pg.start()
        wait_for(lambda: bronze_rows() == 60, 60, "the stream to recover")
    finally:
        bg.finish()
    assert bg.error is None, bg.error

    # When the outage outlasts the retry budget, the job fails clearly, commits nothing of that
    # micro-batch in the checkpoint, and the next run loads it.
    short = StreamConfig(**{**cfg.__dict__, "db_retry_seconds": 1.0})
    own_pg.stop()
    with pytest.raises(CondoError, match="cannot reach PostgreSQL"):
        run_stream(spark, short, log=lambda _: None)
    own_pg.start()
    bg = Background(spark, short)
    wait_for(lambda: any("watching" in line for line in bg.lines), 60, "the stream to start")
    own_pg.stop()
    drop(landing, "transacoes_d.csv", rows(5, 4))
    bg.thread.join(120)
    assert isinstance(bg.error, StreamFailed), bg.error
    assert "PostgreSQL" in str(bg.error) and "nothing is lost" in str(bg.error)
    own_pg.start()
    run_stream(spark, StreamConfig(**{**cfg.__dict__, "available_now": True}), log=lambda _: None)
    with psycopg.connect(own_pg.url) as conn:
        assert conn.execute("select count(*) from bronze.transacoes").fetchone()[0] == 65
        assert duplicated_lines(conn) == 0
        per_file = dict(
            conn.execute(
                "select _source_file, count(*) from bronze.transacoes group by 1"
            ).fetchall()
        )
        assert per_file == {
            "transacoes_a.csv": 10,
            "transacoes_b.csv": 20,
            "transacoes_c.csv": 30,
            "transacoes_d.csv": 5,
        }


def test_sigterm_stops_after_the_current_micro_batch(
    spark, fresh_db, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys
):
    """The CLI's main() with a real SIGTERM to this process, sent while the stream runs."""
    import argparse
    import signal

    parser = argparse.ArgumentParser()
    jobs.add_stream_arguments(parser)
    landing = tmp_path / "landing"
    landing.mkdir()
    args = parser.parse_args(
        [
            "--landing", str(landing),
            "--checkpoint", str(tmp_path / "checkpoint"),
            "--archive", str(tmp_path / "processed"),
            "--rejected", str(tmp_path / "rejected"),
            "--status-file", str(tmp_path / "status.json"),
            "--trigger", "0.5",
        ]
    )  # fmt: skip
    monkeypatch.setenv("PYSPARK_SUBMIT_ARGS", "pyspark-shell")  # main() may set it; restore it
    for e in ENTITY_ORDER:
        drop(landing, f"{e}.csv", (SAMPLE / f"{e}.csv").read_bytes())

    def terminate_after_first_batch() -> None:
        status = tmp_path / "status.json"
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            try:
                if json.loads(status.read_text())["totals"]["batches"] >= 1:
                    break
            except (OSError, ValueError):
                pass
            time.sleep(0.1)
        os.kill(os.getpid(), signal.SIGTERM)

    killer = threading.Thread(target=terminate_after_first_batch, daemon=True)
    killer.start()
    code = stream_run.main(args)
    killer.join(5)
    output = capsys.readouterr().err  # the job's log lines

    assert code == 0, output
    assert "INFO spark_loaders.streaming.run: condo stream: stopping after the current" in output
    assert spark.range(1).count() == 1  # the shared session was not stopped by main()
    with psycopg.connect(fresh_db.url()) as conn:
        assert counts(conn) == {"condominios": 3, "imoveis": 36, "moradores": 39, "transacoes": 22}
    _assert_checkpoint_consistent(tmp_path / "checkpoint")
    assert json.loads((tmp_path / "status.json").read_text())["state"] == "stopped"
