"""Atomic replacement of a dataset directory, and the lock and clean-up around it.

A new version of ``<out>/<model>`` is written to the hidden sibling
``<out>/.<model>.tmp-<run>`` and then swapped in:

* on Linux (``renameat2(RENAME_EXCHANGE)``) and macOS (``renamex_np(RENAME_SWAP)``) the two
  directories trade places in one system call, so ``<out>/<model>`` always exists and
  always holds one complete version;
* elsewhere (or on a file system that refuses the exchange) the old directory is renamed to
  ``.<model>.old-<run>`` and the new one renamed into place: two atomic renames with a
  window of microseconds in which ``<out>/<model>`` does not exist. If the process dies in
  that window, the next export puts the old version back before doing anything else.

Everything happens under an exclusive ``flock`` on ``<out>/.condo-export.lock``, so every
``.tmp-``/``.old-`` sibling found by a new run belongs to a run that died.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import errno
import fcntl
import os
import re
import shutil
import sys
from collections.abc import Iterator
from pathlib import Path

from spark_loaders.errors import CondoError
from spark_loaders.fault_injection import kill_point, rename_swap_forced

MANIFEST = "_manifest.json"
LOCK_FILE = ".condo-export.lock"

_SIBLING = re.compile(r"^\.(?P<model>.+)\.(?P<kind>tmp|old)-(?P<run>[^/]+)$")
_AT_FDCWD = -100
_RENAME_EXCHANGE = 2  # linux/fs.h
_RENAME_SWAP = 2  # macOS sys/stdio.h


def temp_path(out: Path, model: str, run_id: str) -> Path:
    return out / f".{model}.tmp-{run_id}"


def old_path(out: Path, model: str, run_id: str) -> Path:
    return out / f".{model}.old-{run_id}"


def _libc() -> ctypes.CDLL | None:
    name = ctypes.util.find_library("c")
    try:
        return ctypes.CDLL(name, use_errno=True)
    except OSError:
        return None


def exchange(a: Path, b: Path) -> bool:
    """Swap two existing paths atomically. False when the platform or file system cannot."""
    libc = _libc()
    if libc is None:
        return False
    if sys.platform.startswith("linux") and hasattr(libc, "renameat2"):
        rc = libc.renameat2(_AT_FDCWD, os.fsencode(a), _AT_FDCWD, os.fsencode(b), _RENAME_EXCHANGE)
    elif sys.platform == "darwin" and hasattr(libc, "renamex_np"):
        rc = libc.renamex_np(os.fsencode(a), os.fsencode(b), _RENAME_SWAP)
    else:
        return False
    if rc == 0:
        return True
    err = ctypes.get_errno()
    if err in (errno.EINVAL, errno.ENOSYS, errno.ENOTSUP, errno.EOPNOTSUPP, errno.EXDEV):
        return False
    raise OSError(err, f"could not exchange {a} and {b}: {os.strerror(err)}")


def _fsync_dir(path: Path) -> None:
    with contextlib.suppress(OSError):
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def check_replaceable(target: Path) -> None:
    """Refuse to replace a directory that ``condo export`` did not write."""
    if target.is_symlink() or (target.exists() and not target.is_dir()):
        raise CondoError(f"refusing to replace {target}: it is not a plain directory")
    if target.is_dir() and any(target.iterdir()) and not (target / MANIFEST).is_file():
        raise CondoError(
            f"refusing to replace {target}: it has no {MANIFEST}, so it was not written by "
            "`condo export`; move it away or choose another --out"
        )


def swap_in(new: Path, target: Path, run_id: str) -> Path | None:
    """Make the complete dataset at ``new`` visible as ``target``.

    Returns where the previous version now lives (for the caller to delete), or None when
    there was none. ``new`` and ``target`` must be siblings on one file system.
    """
    check_replaceable(target)
    previous: Path | None
    if not target.exists():
        os.rename(new, target)
        previous = None
    elif not rename_swap_forced() and exchange(new, target):
        previous = new  # after the exchange, the temporary path holds the old version
    else:
        previous = old_path(target.parent, target.name, run_id)
        os.rename(target, previous)
        kill_point("export.mid_swap")  # test-only, see fault_injection
        os.rename(new, target)
    _fsync_dir(target.parent)
    return previous


def recover(out: Path) -> list[str]:
    """Clean up after runs that died: delete temporary versions, and put back a previous
    version that a fallback swap had moved aside. Call with the lock held."""
    actions: list[str] = []
    if not out.is_dir():
        return actions
    siblings = sorted(p for p in out.iterdir() if _SIBLING.match(p.name) and p.is_dir())
    for path in siblings:
        match = _SIBLING.match(path.name)
        assert match is not None
        target = out / match.group("model")
        if match.group("kind") == "old" and not target.exists() and (path / MANIFEST).is_file():
            os.rename(path, target)
            actions.append(f"restored {target.name} from an interrupted swap")
        else:
            shutil.rmtree(path)
            actions.append(f"removed stale {path.name}")
    return actions


@contextlib.contextmanager
def export_lock(out: Path) -> Iterator[None]:
    """Exclusive lock on ``out`` for the duration of one export run."""
    out.mkdir(parents=True, exist_ok=True)
    fd = os.open(out / LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise CondoError(
                f"another `condo export` is writing to {out}; wait for it to finish"
            ) from None
        yield
    finally:
        os.close(fd)
