"""The README is a contract with new users: its commands and links must keep existing."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from spark_loaders.cli import COMMANDS, build_parser

ROOT = Path(__file__).resolve().parents[2]
README = (ROOT / "README.md").read_text(encoding="utf-8")
CODE = "\n".join(re.findall(r"```(?:bash|sh)?\n(.*?)```", README, flags=re.S))


def makefile_targets() -> set[str]:
    text = (ROOT / "Makefile").read_text()
    return set(re.findall(r"^([a-zA-Z][\w-]*):", text, flags=re.M))


def test_the_two_commands_are_documented_and_exist() -> None:
    assert "make run" in README and "make test" in README
    assert {"run", "test", "install"} <= makefile_targets()


@pytest.mark.parametrize("target", sorted(set(re.findall(r"\bmake ([a-z][\w-]*)", CODE))))
def test_every_make_target_in_the_readme_exists(target: str) -> None:
    assert target in makefile_targets(), f"README uses `make {target}`, which the Makefile lacks"


@pytest.mark.parametrize("command", sorted(set(re.findall(r"\bcondo ([a-z]+)", README))))
def test_every_condo_command_in_the_readme_exists(command: str) -> None:
    assert command in COMMANDS, f"README mentions `condo {command}`, which the CLI lacks"


def test_ci_runs_the_readme_test_command() -> None:
    ci = (ROOT / ".ci" / "run").read_text()
    assert re.search(r"^make test$", ci, flags=re.M)


@pytest.mark.parametrize("link", sorted(set(re.findall(r"\]\(((?!https?:)[^)#]+)\)", README))))
def test_relative_links_resolve(link: str) -> None:
    assert (ROOT / link).exists(), f"README links to {link}, which does not exist"


def test_cli_help_lists_every_command() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "spark_loaders.cli", "--help"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    for name in COMMANDS:
        assert name in out
    assert build_parser().prog == "condo"


def test_spark_submit_entry_scripts_named_in_readme_exist() -> None:
    for script in re.findall(r"(spark_loaders/\w+\.py)", README):
        assert (ROOT / script).is_file(), f"README names {script}, which does not exist"
