"""Pure parts of the streaming job: checkpoint metadata, paths, layout checks, batch lines."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from spark_loaders.errors import CondoError
from spark_loaders.streaming.batch import format_batch_line, is_connection_error
from spark_loaders.streaming.ledger import BatchRecord, FileOutcome
from spark_loaders.streaming.query_id import is_local, parse_metadata, read_query_id
from spark_loaders.streaming.source import check_layout, local_path


def test_query_id_comes_from_checkpoint_metadata(tmp_path: Path) -> None:
    (tmp_path / "metadata").write_text('{"id":"2f1c7a1e-0000-4000-8000-000000000001"}\n')
    assert read_query_id(str(tmp_path)) == "2f1c7a1e-0000-4000-8000-000000000001"
    assert read_query_id(f"file:{tmp_path}") == "2f1c7a1e-0000-4000-8000-000000000001"


@pytest.mark.parametrize("text", ["", "not json", '{"runId": "x"}', '{"id": ""}'])
def test_bad_checkpoint_metadata_is_a_clear_error(text: str) -> None:
    with pytest.raises(CondoError, match="checkpoint metadata"):
        parse_metadata(text)


def test_missing_checkpoint_metadata(tmp_path: Path) -> None:
    with pytest.raises(CondoError, match="no streaming checkpoint metadata"):
        read_query_id(str(tmp_path))


def test_local_and_remote_locations() -> None:
    assert is_local("/data/landing") and is_local("file:/data/landing") and is_local("rel/dir")
    assert not is_local("s3a://bucket/landing") and not is_local("hdfs://nn:8020/landing")
    assert local_path("file:/tmp/land/transacoes%202024.csv") == "/tmp/land/transacoes 2024.csv"
    assert local_path("s3a://bucket/x.csv") == "s3a://bucket/x.csv"


def test_archive_must_live_outside_the_landing_dir(tmp_path: Path) -> None:
    landing = tmp_path / "landing"
    landing.mkdir()
    check_layout(str(landing), str(tmp_path / "processed"))
    with pytest.raises(CondoError, match="must not be inside"):
        check_layout(str(landing), str(landing / "archive"))
    with pytest.raises(CondoError, match="must not contain"):
        check_layout(str(landing), str(tmp_path))
    with pytest.raises(CondoError, match="does not exist"):
        check_layout(str(tmp_path / "nope"), str(tmp_path / "processed"))


def test_connection_errors_are_told_apart_from_bugs() -> None:
    import psycopg

    assert is_connection_error(psycopg.OperationalError("connection failed"))
    wrapped = RuntimeError("load failed")
    wrapped.__cause__ = psycopg.OperationalError("server closed the connection unexpectedly")
    assert is_connection_error(wrapped)
    assert is_connection_error(RuntimeError("PSQLException: The connection attempt failed."))
    assert not is_connection_error(ValueError("invalid literal for int()"))
    assert not is_connection_error(psycopg.errors.UniqueViolation("duplicate key"))


def test_batch_totals_count_only_loaded_files_and_the_line_says_so() -> None:
    rec = BatchRecord(
        query_id="q",
        batch_id=7,
        started_at=datetime.now(UTC),
        duration_ms=2000,
        latency_ms=1500,
        files=[
            FileOutcome("/l/transacoes_1.csv", "transacoes", "loaded", 100, 98, 2, 11),
            FileOutcome("/l/transacoes_2.csv", "transacoes", "skipped", 0, 0, 0, 12),
            FileOutcome("/l/moradores_x.csv", "moradores", "rejected", 0, 0, 0, 13, "no nome"),
        ],
    )
    params = rec.params()
    assert (params["rows_read"], params["rows_loaded"], params["rows_rejected"]) == (100, 98, 2)
    assert (params["files_loaded"], params["files_skipped"], params["files_rejected"]) == (1, 1, 1)
    line = format_batch_line(rec, attempts=2)
    assert line.startswith("batch 7: 3 file(s): 1 loaded, 1 skipped, 1 rejected")
    assert "rows 100 in, 98 loaded, 2 rejected" in line
    assert "50 rows/s" in line and "latency 1.50 s" in line and "attempt 2" in line


def test_one_stream_per_checkpoint(tmp_path: Path) -> None:
    from spark_loaders.streaming.run import checkpoint_lock

    checkpoint = str(tmp_path / "checkpoint")
    with (
        checkpoint_lock(checkpoint),
        pytest.raises(CondoError, match=r"another condo stream \(pid \d+\)"),
        checkpoint_lock(checkpoint),
    ):
        pass
    with checkpoint_lock(checkpoint):  # released on exit
        pass


def test_sigterm_and_sigint_request_a_graceful_stop_then_a_forced_one() -> None:
    import os
    import signal

    from spark_loaders.streaming.run import graceful_signals

    before = signal.getsignal(signal.SIGTERM)
    with graceful_signals() as (stop, force):
        os.kill(os.getpid(), signal.SIGTERM)
        assert stop.wait(5) and not force.is_set()
        os.kill(os.getpid(), signal.SIGINT)
        assert force.wait(5)
    assert signal.getsignal(signal.SIGTERM) == before


def test_files_the_loader_cannot_take_get_an_outcome_instead(tmp_path: Path) -> None:
    from spark_loaders.streaming.batch import split_files

    good = tmp_path / "Transacoes_2024.csv"
    good.write_text("imovel_id,morador_id,data_transacao,valor_transacao\n")
    stranger = tmp_path / "notes.csv"
    stranger.write_text("a\n")
    gone = tmp_path / "moradores_deleted.csv"
    loadable, unusable = split_files([str(good), str(stranger), str(gone)])
    assert loadable == [str(good)]
    assert [(o.path, o.status) for o in unusable] == [
        (str(stranger), "rejected"),
        (str(gone), "missing"),
    ]
    assert "entity" in (unusable[0].error or "") and "disappeared" in (unusable[1].error or "")


def test_cli_reports_a_bad_landing_dir_in_one_line_before_starting_spark(tmp_path: Path) -> None:
    import subprocess
    import sys

    condo = Path(sys.executable).parent / "condo"
    result = subprocess.run(
        [str(condo), "stream", "--landing", str(tmp_path / "nope"), "--available-now"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        f"condo: error: the landing directory {tmp_path / 'nope'} does not exist"
    ]
