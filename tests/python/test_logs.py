"""The jobs log through ``logging`` in one format on stderr; results stay on stdout.

The unit tests drive :func:`spark_loaders.logs.setup_logging` directly; the end-to-end test
runs ``condo load``'s job function on the real stack (Spark, PostgreSQL) and reads both
streams.
"""

from __future__ import annotations

import argparse
import logging
import re
from pathlib import Path

import pytest

from spark_loaders.errors import CondoError
from spark_loaders.logs import LEVEL_ENV, level_from, setup_logging

SAMPLE = Path(__file__).resolve().parents[2] / "data" / "sample"
LINE = re.compile(
    r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} (INFO|WARNING|ERROR|DEBUG) spark_loaders[.\w]*: .+$"
)


@pytest.fixture(autouse=True)
def _default_level(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.delenv(LEVEL_ENV, raising=False)
    setup_logging("INFO")
    yield
    setup_logging("INFO")


def test_one_format_on_stderr_at_the_chosen_level(capsys, monkeypatch) -> None:
    job = logging.getLogger("spark_loaders.some.job")
    job.info("step %d of %d", 1, 2)
    job.debug("not shown at INFO")
    captured = capsys.readouterr()
    assert captured.out == ""
    lines = captured.err.splitlines()
    assert len(lines) == 1 and LINE.match(lines[0]), captured.err
    assert lines[0].endswith(" INFO spark_loaders.some.job: step 1 of 2")

    monkeypatch.setenv(LEVEL_ENV, "warning")
    setup_logging("WARNING")
    job.info("hidden")
    job.warning("shown")
    assert (
        capsys.readouterr().err.splitlines()[-1].endswith("WARNING spark_loaders.some.job: shown")
    )


def test_level_comes_from_the_environment_and_a_later_call_keeps_it(monkeypatch) -> None:
    logger = logging.getLogger("spark_loaders")
    monkeypatch.setenv(LEVEL_ENV, "ERROR")
    setup_logging("ERROR")
    setup_logging()  # what a job's own main() does under the CLI: keeps the CLI's level
    assert logger.level == logging.ERROR
    setup_logging("DEBUG")  # the flag wins over the environment
    assert logger.level == logging.DEBUG


def test_one_handler_however_often_it_is_set_up(capsys) -> None:
    for _ in range(3):
        setup_logging()
    logging.getLogger("spark_loaders.x").info("once")
    assert capsys.readouterr().err.count("once") == 1


def test_a_bad_level_is_a_one_line_error(monkeypatch) -> None:
    with pytest.raises(CondoError, match=r"--log-level='LOUD': use one of DEBUG, INFO"):
        setup_logging("loud")
    monkeypatch.setenv(LEVEL_ENV, "chatty")
    with pytest.raises(CondoError, match=rf"{LEVEL_ENV}='CHATTY'"):
        level_from(None)  # what the first setup_logging() of a process reads


def test_load_logs_progress_on_stderr_and_prints_the_table_on_stdout(
    spark, fresh_db, tmp_path, capsys
) -> None:
    from spark_loaders.ingest.cli_run import run_load

    bad = tmp_path / "moradores.csv"
    bad.write_text("nome,condominio_id\nAna,1\n")  # no data_registro: rejected whole
    args = argparse.Namespace(target="postgres", force=False, quiet=False, max_reject_rate=None)
    code = run_load(spark, [str(SAMPLE / "condominios.csv"), str(bad)], args)
    captured = capsys.readouterr()

    assert code == 1
    log_lines = captured.err.splitlines()
    assert log_lines and all(LINE.match(line) for line in log_lines), captured.err
    assert any(
        re.search(r"INFO spark_loaders\.ingest\.report: \[1/2\] condominios +condominios\.csv", x)
        for x in log_lines
    )
    assert any(
        re.search(r"WARNING spark_loaders\.ingest\.report: \[2/2\] moradores .*REJECTED", x)
        for x in log_lines
    )
    # The results: the summary table and the closing line, without log prefixes.
    assert "condo load" in captured.out and "condominios.csv" in captured.out
    assert "1 file(s) rejected or failed" in captured.out
    assert " INFO " not in captured.out


def test_cli_flag_sets_the_level_before_the_job_runs(capsys) -> None:
    from spark_loaders import cli

    assert cli.main(["--log-level", "nope", "bronze", "compact", "--dry-run"]) != 0
    assert capsys.readouterr().err.strip() == (
        "condo: error: --log-level='NOPE': use one of DEBUG, INFO, WARNING, ERROR"
    )


def test_cli_flag_before_dbt_is_the_jobs_and_the_rest_goes_to_dbt(capsys) -> None:
    from spark_loaders import cli

    assert cli._leading_log_level(["--log-level", "DEBUG", "dbt", "--log-level", "warn"]) == (
        "DEBUG",
        ["dbt", "--log-level", "warn"],
    )
    assert cli._leading_log_level(["--log-level=ERROR", "load"]) == ("ERROR", ["load"])
    assert cli._leading_log_level(["dbt", "--log-level", "debug"]) == (
        None,
        ["dbt", "--log-level", "debug"],
    )
    assert cli.main(["--log-level=loud", "dbt", "--version"]) != 0
    assert "condo: error: --log-level='LOUD'" in capsys.readouterr().err
