"""Run dbt as a subprocess from the tests, so dbt's global state stays out of pytest.

The environment is the one ``condo dbt`` builds (``spark_loaders.dbt_env``); each caller
passes its own target directory, because other runs (other tests, other people's tools)
use the project's ``target/`` at the same time.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

from spark_loaders.dbt_env import dbt_environment

PROJECT_ROOT = Path(__file__).resolve().parents[2]
DBT = Path(sys.executable).with_name("dbt")


class DbtFailed(AssertionError):
    pass


def run_dbt(
    args: Sequence[str],
    *,
    workdir: Path,
    target: str = "postgres",
    extra_env: dict[str, str] | None = None,
    check: bool = True,
    timeout: float = 900,
) -> subprocess.CompletedProcess[str]:
    """``dbt ARGS --target TARGET`` with target/ and logs/ under ``workdir``."""
    env = dbt_environment(target)
    env.update(extra_env or {})
    env["DBT_SEND_ANONYMOUS_USAGE_STATS"] = "false"
    env["DBT_USE_COLORS"] = "false"
    env["DBT_PROFILES_DIR"] = str(PROJECT_ROOT / "profiles")
    cmd = [
        str(DBT),
        *args,
        "--target",
        target,
        "--project-dir",
        str(PROJECT_ROOT),
        "--target-path",
        str(workdir / "target"),
        "--log-path",
        str(workdir / "logs"),
    ]
    result = subprocess.run(
        cmd, cwd=PROJECT_ROOT, env=env, capture_output=True, text=True, timeout=timeout
    )
    if check and result.returncode != 0:
        raise DbtFailed(
            f"{' '.join(cmd[1:3])} failed ({result.returncode}):\n{result.stdout[-6000:]}\n"
            f"{result.stderr[-3000:]}"
        )
    return result
