"""One definition of each Spark job's options, shared by ``condo <job>`` and its
spark-submit entry script, and the entry wrapper's error handling."""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

import pytest

from spark_loaders import jobs
from spark_loaders.cli import build_parser

PROJECT = Path(__file__).resolve().parents[2]


def _options(parser: argparse.ArgumentParser) -> dict[str, tuple]:
    """Every argument of ``parser`` but -h: its flags, destination, default, choices, nargs."""
    return {
        action.dest: (tuple(action.option_strings), action.default, action.choices, action.nargs)
        for action in parser._actions
        if not isinstance(action, argparse._HelpAction)
    }


def _command_parser(name: str) -> argparse.ArgumentParser:
    sub = next(a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction))
    return sub.choices[name]


@pytest.mark.parametrize("job", jobs.JOBS, ids=lambda job: job.name)
def test_the_command_and_the_script_take_the_same_options(job: jobs.Job) -> None:
    command = _options(_command_parser(job.name))
    script = _options(jobs.script_parser(job))
    assert command == script
    assert "master" in command  # every job runs on a chosen Spark master


def test_every_entry_script_is_a_job() -> None:
    scripts = {path.name for path in (PROJECT / "spark_loaders").glob("*.py")}
    assert {job.script for job in jobs.JOBS} <= scripts
    for job in jobs.JOBS:
        text = (PROJECT / "spark_loaders" / job.script).read_text()
        assert f"jobs.submit_main(jobs.{job.name.upper()}, argv)" in text


@pytest.mark.parametrize("job", jobs.JOBS, ids=lambda job: job.name)
def test_an_entry_script_reports_a_condo_error_in_one_line(job: jobs.Job) -> None:
    """Run as spark-submit runs it (a path, not a module), outside the project directory:
    the bad --master is refused by the job's own code before Spark starts."""
    done = subprocess.run(
        [sys.executable, str(PROJECT / "spark_loaders" / job.script), "--master", "http://h:1"],
        cwd="/",
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 2, done.stderr
    assert done.stderr.strip() == (
        f"{job.script}: error: --master 'http://h:1' is not a Spark master URL "
        "(local[N], spark://host:port, yarn, k8s://...)"
    )


def test_a_bad_option_value_is_refused_by_both_front_ends(capsys) -> None:
    with pytest.raises(SystemExit) as script_exit:
        jobs.submit_main(jobs.LOAD, ["--max-reject-rate", "2"])
    with pytest.raises(SystemExit) as command_exit:
        build_parser().parse_args(["load", "--max-reject-rate", "2"])
    assert script_exit.value.code == command_exit.value.code == 2
    assert capsys.readouterr().err.count("--max-reject-rate: must be between 0 and 1") == 2
