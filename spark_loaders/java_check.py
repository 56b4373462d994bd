"""Spark needs Java 17 or newer. Check for it up front and say so in one line,
instead of letting py4j fail with a stack trace."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

from spark_loaders.errors import CondoError

MIN_JAVA = 17
INSTALL_HINT = (
    "install a JDK 17+ (Debian/Ubuntu: `sudo apt-get install openjdk-17-jre-headless`; "
    "macOS: `brew install openjdk@17`) or set JAVA_HOME to one"
)

_VERSION = re.compile(r'version "(?P<version>[^"]+)"')


def parse_java_major(version_output: str) -> int | None:
    """The major version from ``java -version`` output: ``1.8.0_392`` gives 8,
    ``17.0.15`` gives 17, ``21-ea`` gives 21. None when nothing recognisable is there."""
    match = _VERSION.search(version_output)
    if not match:
        return None
    head = re.match(r"\d+(?:\.\d+)?", match.group("version"))
    if not head:
        return None
    parts = head.group(0).split(".")
    if parts[0] == "1" and len(parts) > 1:
        return int(parts[1])
    return int(parts[0])


def find_java(environ: dict[str, str] | os._Environ[str] = os.environ) -> str | None:
    home = environ.get("JAVA_HOME")
    if home:
        candidate = Path(home) / "bin" / "java"
        return str(candidate) if candidate.is_file() else None
    return shutil.which("java", path=environ.get("PATH"))


def check_java(environ: dict[str, str] | os._Environ[str] = os.environ) -> int:
    """Return Java's major version, or raise :class:`CondoError` with a one-line fix."""
    java = find_java(environ)
    if java is None:
        home = environ.get("JAVA_HOME")
        if home:
            raise CondoError(
                f"Spark needs Java {MIN_JAVA}+, but JAVA_HOME={home} has no bin/java: "
                f"{INSTALL_HINT}"
            )
        raise CondoError(
            f"Spark needs Java {MIN_JAVA}+, but no `java` was found on PATH: {INSTALL_HINT}"
        )
    try:
        result = subprocess.run([java, "-version"], capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise CondoError(
            f"Spark needs Java {MIN_JAVA}+, but `{java} -version` failed ({exc}): {INSTALL_HINT}"
        ) from None
    major = parse_java_major(result.stderr + result.stdout)
    if major is None:
        raise CondoError(
            f"could not read the version of {java}; Spark needs Java {MIN_JAVA}+: {INSTALL_HINT}"
        )
    if major < MIN_JAVA:
        raise CondoError(
            f"Spark needs Java {MIN_JAVA}+, but {java} is Java {major}: {INSTALL_HINT}"
        )
    return major
