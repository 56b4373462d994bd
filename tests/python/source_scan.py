"""For tests that police the package's source: where a pattern appears outside the one
module allowed to hold it."""

from __future__ import annotations

import re
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[2] / "spark_loaders"


def lines_matching(pattern: re.Pattern[str], *, except_in: str) -> list[str]:
    """``path:line`` of every line of ``spark_loaders/`` matching ``pattern``, except in the
    module named ``except_in``."""
    return [
        f"{path.relative_to(PACKAGE.parent)}:{number}"
        for path in sorted(PACKAGE.rglob("*.py"))
        if path.name != except_in
        for number, line in enumerate(path.read_text().splitlines(), 1)
        if pattern.search(line)
    ]
