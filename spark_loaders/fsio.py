"""File access for loader inputs on any Hadoop file system.

A loader input is a plain path, a ``file:`` URI or a URI of any file system Hadoop knows
(``hdfs://``, ``s3a://``, ``abfss://``, ...). :func:`as_path` turns it into an object with
the small part of :class:`pathlib.Path` the loader uses (``name``, ``open``, ``stat``,
``is_file``, ``is_dir``, ``iterdir``, ``resolve``, ``str()``):

- a plain path or a ``file:`` URI becomes a :class:`pathlib.Path` (the local fast path);
- any other URI becomes a :class:`HadoopPath`, which lists, reads and stats through
  Hadoop's ``FileSystem`` API in the driver's JVM, so the driver never needs the file on
  its own disk. ``str()`` of it is the URI, which Spark's readers accept as they are.

``$CONDO_FILE_ACCESS=hadoop`` sends ``file:`` URIs through Hadoop too (tests use it to run
the Hadoop path on local files).
"""

from __future__ import annotations

import io
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any, NamedTuple
from urllib.parse import unquote, urlsplit

from spark_loaders import spark_internals
from spark_loaders.errors import CondoError

READ_CHUNK = 4 << 20  # bytes per call into the JVM


def scheme_of(location: str) -> str:
    """The URI scheme, or '' for a plain path (a Windows drive letter is not a scheme)."""
    scheme = urlsplit(location).scheme
    return "" if len(scheme) <= 1 else scheme.lower()


def is_local(location: str | os.PathLike[str]) -> bool:
    return isinstance(location, Path) or scheme_of(str(location)) in ("", "file")


def _hadoop_for_file_uris() -> bool:
    return os.environ.get("CONDO_FILE_ACCESS", "").strip().lower() == "hadoop"


def as_path(location: str | os.PathLike[str]) -> Path | HadoopPath:
    """A path object for a loader input (see the module docstring)."""
    if isinstance(location, (Path, HadoopPath)):
        return location
    text = os.fspath(location)
    scheme = scheme_of(text)
    if scheme == "":
        return Path(text).expanduser()
    if scheme == "file" and not _hadoop_for_file_uris():
        return Path(unquote(urlsplit(text).path))
    return HadoopPath(text)


class Stat(NamedTuple):
    st_size: int
    st_mtime: float
    st_mtime_ns: int  # what the loader compares before its commit, as with os.stat_result


def _jvm_and_conf() -> tuple[Any, Any]:
    from pyspark.sql import SparkSession

    spark = SparkSession.getActiveSession()
    if spark is None:
        raise CondoError("reading a Hadoop file system URI needs a running Spark session")
    return spark_internals.jvm(spark), spark_internals.hadoop_configuration(spark)


def _java_error(exc: Exception) -> str:
    text = str(exc).strip().splitlines()
    for line in text:
        if "Exception" in line:
            return line.split("Exception:", 1)[-1].strip() or line.strip()
    return text[0] if text else type(exc).__name__


class HadoopPath:
    """A file or directory on a Hadoop file system, addressed by its URI."""

    __slots__ = ("uri",)

    def __init__(self, uri: str) -> None:
        self.uri = uri.rstrip("/") if len(urlsplit(uri).path) > 1 else uri

    # identity --------------------------------------------------------------------------
    def __str__(self) -> str:
        return self.uri

    def __repr__(self) -> str:
        return f"HadoopPath({self.uri!r})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, HadoopPath) and other.uri == self.uri

    def __hash__(self) -> int:
        return hash(self.uri)

    def __lt__(self, other: HadoopPath) -> bool:
        return self.uri < other.uri

    @property
    def name(self) -> str:
        return unquote(urlsplit(self.uri).path.rstrip("/").rsplit("/", 1)[-1])

    def expanduser(self) -> HadoopPath:
        return self

    def resolve(self) -> HadoopPath:
        fs, path = self._fs()
        return HadoopPath(str(fs.makeQualified(path).toString()))

    # metadata --------------------------------------------------------------------------
    def _fs(self) -> tuple[Any, Any]:
        jvm, conf = _jvm_and_conf()
        path = jvm.org.apache.hadoop.fs.Path(self.uri)
        try:
            return path.getFileSystem(conf), path
        except Exception as exc:  # no connector for the scheme, bad authority, ...
            raise CondoError(
                f"{self.uri}: cannot open the file system: {_java_error(exc)}"
            ) from None

    def _status(self) -> Any | None:
        fs, path = self._fs()
        try:
            return fs.getFileStatus(path)
        except Exception as exc:
            if "FileNotFoundException" in str(exc):
                return None
            raise CondoError(f"{self.uri}: {_java_error(exc)}") from None

    def exists(self) -> bool:
        return self._status() is not None

    def is_file(self) -> bool:
        status = self._status()
        return status is not None and bool(status.isFile())

    def is_dir(self) -> bool:
        status = self._status()
        return status is not None and bool(status.isDirectory())

    def stat(self) -> Stat:
        status = self._status()
        if status is None:
            raise FileNotFoundError(self.uri)
        millis = int(status.getModificationTime())
        return Stat(int(status.getLen()), millis / 1000, millis * 1_000_000)

    def iterdir(self) -> Iterator[HadoopPath]:
        fs, path = self._fs()
        try:
            listing = fs.listStatus(path)
        except Exception as exc:
            raise CondoError(f"{self.uri}: cannot list: {_java_error(exc)}") from None
        for status in listing:
            yield HadoopPath(str(status.getPath().toString()))

    # content ---------------------------------------------------------------------------
    def open(
        self, mode: str = "r", *, encoding: str | None = None, newline: str | None = None
    ) -> io.IOBase:
        if mode not in ("r", "rb", "rt"):
            raise ValueError(f"HadoopPath opens files for reading only, not {mode!r}")
        fs, path = self._fs()
        try:
            stream = fs.open(path)
        except Exception as exc:
            raise CondoError(f"{self.uri}: cannot open: {_java_error(exc)}") from None
        buffered = io.BufferedReader(_HadoopStream(stream), buffer_size=READ_CHUNK)
        if mode == "rb":
            return buffered
        return io.TextIOWrapper(buffered, encoding=encoding or "utf-8", newline=newline)


class _HadoopStream(io.RawIOBase):
    """A raw, seekable binary stream over a Hadoop ``FSDataInputStream``."""

    def __init__(self, stream: Any) -> None:
        self._stream = stream

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        want = min(len(buffer), READ_CHUNK)
        data = self._stream.readNBytes(want)  # byte[] comes back as bytes
        n = len(data)
        buffer[:n] = data
        return n

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        if whence == io.SEEK_CUR:
            offset += self.tell()
        elif whence != io.SEEK_SET:
            raise io.UnsupportedOperation("seek from the end")
        self._stream.seek(offset)
        return offset

    def tell(self) -> int:
        return int(self._stream.getPos())

    def close(self) -> None:
        if not self.closed:
            self._stream.close()
        super().close()
