"""The test-only fault seam: inert by default, a real SIGKILL when asked, and the only place
in spark_loaders that reads the fault variables or sends SIGKILL."""

from __future__ import annotations

import os
import re
import subprocess
import sys

import pytest
from source_scan import lines_matching

from spark_loaders import fault_injection


def test_kill_points_do_nothing_unless_asked(monkeypatch) -> None:
    for env in ("CONDO_STREAM_FAULT", "CONDO_EXPORT_FAULT", "CONDO_EXPORT_SWAP"):
        monkeypatch.delenv(env, raising=False)
    for name in fault_injection.KILL_POINTS:
        fault_injection.kill_point(name, 0 if name.startswith("stream.") else None)
    monkeypatch.setenv("CONDO_STREAM_FAULT", "after_write:1")  # another batch
    fault_injection.kill_point("stream.after_write", 0)
    assert not fault_injection.rename_swap_forced()
    monkeypatch.setenv("CONDO_EXPORT_SWAP", "rename")
    assert fault_injection.rename_swap_forced()


def test_an_unknown_kill_point_is_a_programming_error() -> None:
    with pytest.raises(ValueError, match="unknown kill point"):
        fault_injection.kill_point("stream.after_wirte", 0)


@pytest.mark.parametrize(
    "name, batch_id, env, value",
    [("stream.after_write", 3, "CONDO_STREAM_FAULT", "after_write:3"),
     ("export.after_write", None, "CONDO_EXPORT_FAULT", "after_write")],
)  # fmt: skip
def test_a_requested_kill_point_sends_sigkill(name, batch_id, env, value) -> None:
    code = (
        "import sys; from spark_loaders.fault_injection import kill_point; "
        f"kill_point({name!r}, {batch_id!r}); print('survived')"
    )
    done = subprocess.run(
        [sys.executable, "-c", code],
        env={**os.environ, env: value},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == -9, done.stdout + done.stderr
    assert f"fault injection {value}, SIGKILL" in done.stdout
    assert "survived" not in done.stdout


def test_no_production_module_reads_the_fault_variables_or_sends_sigkill() -> None:
    hook = re.compile(r"CONDO_(STREAM|EXPORT)_FAULT|CONDO_EXPORT_SWAP|SIGKILL")
    offenders = lines_matching(hook, except_in="fault_injection.py")
    assert offenders == []
