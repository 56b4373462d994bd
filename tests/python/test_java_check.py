"""The Java check that runs before Spark starts: version parsing, and one clear line
(with the install hint, without a py4j traceback) when Java is missing or too old."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from spark_loaders.errors import CondoError
from spark_loaders.java_check import MIN_JAVA, check_java, find_java, parse_java_major

PROJECT_ROOT = Path(__file__).resolve().parents[2]

OUTPUTS = {
    # real `java -version` banners (they go to stderr)
    'openjdk version "17.0.15" 2025-04-15\nOpenJDK Runtime Environment (build 17.0.15+6-Debian-1deb12u1)': 17,
    'java version "1.8.0_392"\nJava(TM) SE Runtime Environment (build 1.8.0_392-b08)': 8,
    'openjdk version "11.0.22" 2024-01-16': 11,
    'openjdk version "21" 2023-09-19': 21,
    'openjdk version "21-ea" 2023-06-08': 21,
    'openjdk version "25.0.1" 2025-10-21 LTS': 25,
    'Picked up JAVA_TOOL_OPTIONS: -Xmx1g\nopenjdk version "17.0.8.1" 2023-08-24': 17,
    'java version "1.7.0_80"': 7,
    "": None,
    "bash: java: command not found": None,
    'openjdk version "abc"': None,
}


@pytest.mark.parametrize(("output", "major"), OUTPUTS.items())
def test_parse_java_major(output: str, major: int | None) -> None:
    assert parse_java_major(output) == major


def _fake_jdk(home: Path, banner: str) -> Path:
    """A JAVA_HOME whose bin/java prints ``banner`` the way java does (to stderr)."""
    java = home / "bin" / "java"
    java.parent.mkdir(parents=True)
    java.write_text(f"#!/bin/sh\ncat >&2 <<'EOF'\n{banner}\nEOF\n")
    java.chmod(java.stat().st_mode | stat.S_IXUSR)
    return java


@pytest.mark.parametrize("major", [MIN_JAVA, MIN_JAVA + 4])
def test_java_at_or_above_the_minimum_is_accepted(tmp_path: Path, major: int) -> None:
    _fake_jdk(tmp_path / "jdk", f'openjdk version "{major}.0.2" 2024-01-16')
    assert check_java({"JAVA_HOME": str(tmp_path / "jdk"), "PATH": "/usr/bin"}) == major


def test_java_just_below_the_minimum_is_refused(tmp_path: Path) -> None:
    _fake_jdk(tmp_path / "jdk", f'openjdk version "{MIN_JAVA - 1}.0.2" 2024-01-16')
    with pytest.raises(CondoError, match=f"Java {MIN_JAVA - 1}"):
        check_java({"JAVA_HOME": str(tmp_path / "jdk"), "PATH": "/usr/bin"})


def test_old_java_is_refused_with_the_hint(tmp_path: Path) -> None:
    _fake_jdk(tmp_path / "jdk11", 'openjdk version "11.0.22" 2024-01-16')
    with pytest.raises(CondoError) as err:
        check_java({"JAVA_HOME": str(tmp_path / "jdk11"), "PATH": "/usr/bin"})
    message = str(err.value)
    assert "Java 11" in message and f"Java {MIN_JAVA}+" in message
    assert "apt-get install openjdk-17" in message and "\n" not in message


def test_java_home_wins_over_path_and_a_wrong_one_is_named(tmp_path: Path) -> None:
    java = _fake_jdk(tmp_path / "jdk21", 'openjdk version "21.0.2" 2024-01-16')
    assert find_java({"JAVA_HOME": str(tmp_path / "jdk21"), "PATH": "/usr/bin"}) == str(java)
    assert check_java({"JAVA_HOME": str(tmp_path / "jdk21"), "PATH": ""}) == 21
    with pytest.raises(CondoError, match=r"JAVA_HOME=.*nowhere has no bin/java"):
        check_java({"JAVA_HOME": str(tmp_path / "nowhere"), "PATH": "/usr/bin"})


def test_unreadable_version_is_a_clear_error(tmp_path: Path) -> None:
    _fake_jdk(tmp_path / "odd", "something that is not java")
    with pytest.raises(CondoError, match="could not read the version"):
        check_java({"JAVA_HOME": str(tmp_path / "odd")})


def _without_java(tmp_path: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("JAVA_HOME", "PYSPARK_GATEWAY_PORT")}
    empty = tmp_path / "bin"
    empty.mkdir(exist_ok=True)
    # Only the virtualenv's scripts and an empty directory: no java anywhere.
    env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), str(empty)])
    env["CONDO_STATE_DIR"] = str(tmp_path / "state")
    env["CONDO_HOME"] = str(PROJECT_ROOT)
    assert find_java(env) is None
    return env


@pytest.mark.parametrize(
    "args",
    [
        ["load", str(PROJECT_ROOT / "data" / "sample")],
        ["export", "--out", "{tmp}/lake"],
    ],
    ids=["load", "export"],
)
def test_spark_commands_without_java_fail_in_one_line(tmp_path: Path, args: list[str]) -> None:
    env = _without_java(tmp_path)
    argv = [a.replace("{tmp}", str(tmp_path)) for a in args]
    done = subprocess.run(
        [sys.executable, "-m", "spark_loaders.cli", *argv],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode != 0
    assert done.stderr.count("\n") == 1, done.stderr
    assert done.stderr.startswith("condo: error: Spark needs Java 17+")
    assert "no `java` was found on PATH" in done.stderr
    assert "apt-get install openjdk-17-jre-headless" in done.stderr
    assert "Traceback" not in done.stderr and "py4j" not in done.stderr.lower()
    # the check comes first: nothing was initialised on the way
    assert not (tmp_path / "state" / "pg").exists()
