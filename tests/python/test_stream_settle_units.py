"""``retries.wait_settled`` on real files: a file is handed to the loader only once its size
and mtime have stayed put for the settle time."""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path

from spark_loaders.streaming.retries import backoff_seconds, wait_settled


def test_a_file_being_written_is_settled_only_after_the_writer_stops(tmp_path: Path) -> None:
    path = tmp_path / "transacoes_slow.csv"
    path.write_bytes(b"header\n")
    stop_at = time.time() + 2.0

    def writer() -> None:
        while time.time() < stop_at:
            with path.open("ab") as handle:
                handle.write(b"1,1,2024-03-01,1.00\n")
            time.sleep(0.1)

    thread = threading.Thread(target=writer)
    thread.start()
    settled, waiting = wait_settled([str(path)], 0.8, 20)
    returned_at = time.time()
    thread.join()
    assert settled == [str(path)] and waiting == []
    assert returned_at >= stop_at + 0.7  # still for the settle time after the last write


def test_old_files_pass_at_once_and_future_ones_are_watched(tmp_path: Path) -> None:
    old = tmp_path / "old.csv"
    old.write_bytes(b"x\n")
    os.utime(old, (time.time() - 30 * 86400,) * 2)
    started = time.monotonic()
    assert wait_settled([str(old)], 5, 20) == ([str(old)], [])
    assert time.monotonic() - started < 1

    future = tmp_path / "future.csv"
    future.write_bytes(b"x\n")
    os.utime(future, (time.time() + 86400,) * 2)
    started = time.monotonic()
    assert wait_settled([str(future)], 0.5, 20) == ([str(future)], [])
    assert time.monotonic() - started >= 0.5


def test_a_file_that_never_settles_is_left_waiting(tmp_path: Path) -> None:
    path = tmp_path / "busy.csv"
    path.write_bytes(b"x\n")
    done = threading.Event()

    def writer() -> None:
        while not done.is_set():
            with path.open("ab") as handle:
                handle.write(b"y\n")
            time.sleep(0.05)

    thread = threading.Thread(target=writer)
    thread.start()
    try:
        assert wait_settled([str(path)], 0.5, 1.5) == ([], [str(path)])
    finally:
        done.set()
        thread.join()


def test_backoff_doubles_up_to_five_minutes() -> None:
    assert [backoff_seconds(n, 5) for n in (1, 2, 3, 4)] == [5, 10, 20, 40]
    assert backoff_seconds(20, 5) == 300
