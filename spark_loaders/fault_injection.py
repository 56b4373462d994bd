"""TEST-ONLY fault injection: the one seam through which tests crash production code.

The crash-safety tests must kill a real loader or export at the exact moment where a crash
hurts most, and force code paths the machine would not take by itself. Production code
marks those moments with :func:`kill_point` and asks :func:`rename_swap_forced`; both do
nothing unless a test sets the environment variable below, and nothing else in
``spark_loaders`` reads these variables or sends SIGKILL. Never set them in operation.

====================================  ======================================================
environment variable                  effect
====================================  ======================================================
``CONDO_STREAM_FAULT=<point>:<id>``   SIGKILL at ``stream.<point>`` of micro-batch ``<id>``
                                      (``before_write``; ``after_write``: after the batch
                                      committed in PostgreSQL, before Spark commits it)
``CONDO_EXPORT_FAULT=<point>``        SIGKILL at ``export.<point>`` (``after_write``: every
                                      model written, none swapped in; ``mid_swap``: between
                                      the two renames of the fallback swap)
``CONDO_EXPORT_SWAP=rename``          use the two-rename swap even where the atomic
                                      exchange works (so ``mid_swap`` can be reached)
====================================  ======================================================

Used by tests/python/test_stream_process.py, test_export.py and test_export_units.py.
"""

from __future__ import annotations

import os
import signal
import sys

STREAM_ENV = "CONDO_STREAM_FAULT"
EXPORT_ENV = "CONDO_EXPORT_FAULT"
EXPORT_SWAP_ENV = "CONDO_EXPORT_SWAP"

_ENV_OF_JOB = {"stream": STREAM_ENV, "export": EXPORT_ENV}
KILL_POINTS = frozenset(
    {"stream.before_write", "stream.after_write", "export.after_write", "export.mid_swap"}
)


def kill_point(name: str, batch_id: int | None = None) -> None:
    """Kill this process with SIGKILL if a test asked for it at ``name`` (one of
    :data:`KILL_POINTS`; for the stream, of micro-batch ``batch_id``). Otherwise do nothing."""
    if name not in KILL_POINTS:
        raise ValueError(f"unknown kill point {name!r}")
    job, point = name.split(".", 1)
    wanted = point if batch_id is None else f"{point}:{batch_id}"
    if os.environ.get(_ENV_OF_JOB[job]) != wanted:
        return
    print(f"condo {job}: fault injection {wanted}, SIGKILL", flush=True)
    sys.stderr.flush()
    os.kill(os.getpid(), signal.SIGKILL)


def rename_swap_forced() -> bool:
    """Whether a test forces the export's two-rename swap (``CONDO_EXPORT_SWAP=rename``)."""
    return os.environ.get(EXPORT_SWAP_ENV) == "rename"
