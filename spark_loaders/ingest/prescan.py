"""One sequential pass over a file's bytes before Spark sees it: content hash, size, UTF-8
validity, and the facts that decide how the file is parsed."""

from __future__ import annotations

import codecs
import hashlib
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc

from spark_loaders.ingest.csv_split import (
    Record,
    UnterminatedQuote,
    iter_records,
    physical_lines,
)

CHUNK = 8 << 20
INDEX_STEP = 1 << 20  # newline counts are kept at every MiB boundary
BOM = b"\xef\xbb\xbf"
# A line that may be blank starts with one of these right after a newline (or is the first).
_MAYBE_BLANK = (b"\n\n", b"\n\r", b"\n ", b"\n\t")


class RecordDigest:
    """SHA-256 of a file's records rather than its bytes: the content identity of a load.

    The digest is taken over the text with the BOM removed, every CRLF turned into LF (a lone
    CR is kept: the dialect treats it as data), trailing blank lines (only spaces and tabs)
    dropped and exactly one final LF. A file already in that form (UTF-8 without BOM, LF,
    ending in one newline) hashes to the SHA-256 of its bytes, so ledger entries written
    before this identity existed still match. Fed chunk by chunk, in bounded memory (only a
    run of blank characters is held back)."""

    _BLANK = b" \t\n"

    def __init__(self) -> None:
        self._digest = hashlib.sha256()
        self._head: bytes | None = b""  # the first bytes, until a BOM can be ruled out
        self._carry = b""  # a CR at the end of the previous chunk
        self._pending = b""  # blank characters not yet known to be inside the records
        self._any = False

    def update(self, chunk: bytes) -> None:
        if self._head is not None:
            chunk = self._head + chunk
            if len(chunk) < len(BOM) and BOM.startswith(chunk):
                self._head = chunk
                return
            self._head = None
            if chunk.startswith(BOM):
                chunk = chunk[len(BOM) :]
        self._feed(chunk)

    def _feed(self, chunk: bytes) -> None:
        data = self._carry + chunk if self._carry else chunk
        self._carry = b""
        if data.endswith(b"\r"):
            data, self._carry = data[:-1], b"\r"
        if b"\r" in data:
            data = data.replace(b"\r\n", b"\n")
        keep = _len_without_trailing(data, self._BLANK)
        if keep:
            # The held-back blanks turned out to be inside the records: hash them, then the
            # chunk, without concatenating (a copy of every chunk).
            self._digest.update(self._pending)
            self._digest.update(memoryview(data)[:keep])
            self._any = True
            self._pending = data[keep:]
        else:
            self._pending += data

    def hexdigest(self) -> str:
        if self._head:  # a file shorter than a BOM, starting like one
            head, self._head = self._head, None
            self._feed(head)
        tail = self._pending + self._carry
        if tail.rstrip(self._BLANK):  # a final lone CR: data, not a line ending
            self._digest.update(tail)
            self._any = True
            tail = b""
        if self._any:
            # The rest of the last record's line (spaces or tabs before its newline), then LF.
            self._digest.update(tail.split(b"\n", 1)[0] + b"\n")
        return self._digest.hexdigest()


def _len_without_trailing(data: bytes, chars: bytes) -> int:
    """``len(data.rstrip(chars))`` without copying ``data`` when only its end is blank."""
    tail = data[-64:]
    kept = len(tail.rstrip(chars))
    if kept:
        return len(data) - len(tail) + kept
    return len(data.rstrip(chars))


@dataclass(frozen=True)
class Prescan:
    sha256: str  # of the bytes: what a re-check before commit compares
    size: int
    encoding_error: str | None  # why the bytes are not acceptable UTF-8 text, or None
    has_quote: bool  # any '"' in the file: the parallel parser must check its quoting
    maybe_blank: bool  # a line may be blank (some line is empty or starts with a space/tab)
    newlines_at: tuple[int, ...]  # newlines_at[i]: number of '\n' in the first i MiB
    physical_lines: int  # lines as spark.read.text sees them (a final unterminated one counts)
    content_hash: str = ""  # RecordDigest: the ledger's content identity
    lone_cr: bool = False  # a CR that is not part of a CRLF line end (data, in the dialect)

    def newlines_before(self, path: Path, offset: int) -> int:
        """Number of '\n' bytes in the file before byte ``offset``."""
        step = offset // INDEX_STEP
        with path.open("rb") as handle:
            handle.seek(step * INDEX_STEP)
            return self.newlines_at[step] + handle.read(offset - step * INDEX_STEP).count(b"\n")


def _read_into(path: Path, digest) -> str:
    """Feed the file's bytes to ``digest`` (a hashlib object or a RecordDigest), chunk by
    chunk; its hex digest."""
    with path.open("rb") as handle:
        while chunk := handle.read(CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def raw_sha256(path: Path) -> str:
    """SHA-256 of the file's bytes (the pre-scan's ``sha256``), read once more."""
    return _read_into(path, hashlib.sha256())


def record_digest(path: Path) -> str:
    """The file's :class:`RecordDigest`, read once more."""
    return _read_into(path, RecordDigest())


def _ends_canonically(last: bytes) -> bool:
    """Does a file whose last chunk is ``last`` end as RecordDigest's canonical form does:
    something other than blanks in that chunk, then exactly one newline, as the last byte?
    (Spaces and tabs may come before that newline.)"""
    kept = _len_without_trailing(last, RecordDigest._BLANK)
    return kept > 0 and last.endswith(b"\n") and last.count(b"\n", kept) == 1


def _hash_chunk(digest, records: RecordDigest | None, chunk: bytes) -> None:
    digest.update(chunk)
    if records is not None:
        records.update(chunk)


def prescan(path: Path) -> Prescan:
    """The pre-scan. Each chunk is hashed in a second thread while this one checks it
    (hashlib releases the GIL), so the two cost about the larger of them rather than their
    sum. Most files are already in RecordDigest's canonical form (no BOM, no CR, one final
    newline), and for them the content hash is the SHA-256 of the bytes: it is computed
    once. A file that starts with a BOM or has a CR in its first chunk feeds a RecordDigest
    as well; any other non-canonical file is read a second time for it."""
    digest = hashlib.sha256()
    records: RecordDigest | None = None
    decoder = codecs.getincrementaldecoder("utf-8")("strict")
    size = 0
    lines_before = 0
    has_quote = False
    maybe_blank = False
    lone_cr = False
    has_cr = False
    error: str | None = None
    newlines_at = [0]
    previous = b"\n"  # the first line is checked as if a newline preceded it
    last = b""
    with (
        path.open("rb") as handle,
        ThreadPoolExecutor(max_workers=1, thread_name_prefix="prescan-hash") as hasher,
    ):
        while chunk := handle.read(CHUNK):
            if size == 0 and (chunk.startswith(BOM[:1]) or b"\r" in chunk):
                records = RecordDigest()
            hashed = hasher.submit(_hash_chunk, digest, records, chunk)
            if error is None:
                error = _check_chunk(decoder, chunk, size, lines_before)
            for start in range(0, len(chunk), INDEX_STEP):
                newlines_at.append(newlines_at[-1] + chunk.count(b"\n", start, start + INDEX_STEP))
            lines_before = newlines_at[-1]
            has_quote = has_quote or b'"' in chunk
            if not maybe_blank:
                maybe_blank = _maybe_blank(previous[-1:], chunk)
            has_cr = has_cr or b"\r" in chunk
            if not lone_cr and has_cr:
                lone_cr = _has_lone_cr(previous[-1:], chunk)
            previous = chunk
            last = chunk
            size += len(chunk)
            hashed.result()
    if error is None:
        try:
            decoder.decode(b"", final=True)
        except UnicodeDecodeError:
            error = "not valid UTF-8: the file ends in the middle of a multi-byte character"
    sha256 = digest.hexdigest()
    if records is not None:
        content_hash = records.hexdigest()
    else:
        canonical = not has_cr and _ends_canonically(last)
        content_hash = sha256 if canonical else record_digest(path)
    physical = lines_before + (1 if size and last[-1:] != b"\n" else 0)
    return Prescan(
        sha256,
        size,
        error,
        has_quote,
        maybe_blank,
        tuple(newlines_at),
        physical,
        content_hash,
        lone_cr or last[-1:] == b"\r",
    )


def _matches(pattern: bytes, data: bytes) -> bool:
    """RE2 over a whole chunk: on text with a newline every few dozen bytes, this is several
    times faster than ``bytes.find`` with a two-byte needle that starts with a newline."""
    return bool(pc.match_substring_regex(pa.array([data], pa.binary()), pattern)[0].as_py())


def _maybe_blank(before: bytes, chunk: bytes) -> bool:
    """Does a line start (in ``chunk``, ``before`` being the byte ahead of it) with a newline,
    a CR, a space or a tab?"""
    return (before[-1:] + chunk[:1]) in _MAYBE_BLANK or _matches(rb"\n[\n\r \t]", chunk)


def _has_lone_cr(before: bytes, chunk: bytes) -> bool:
    """A CR not followed by LF, in ``chunk`` or at the seam with the chunk ``before`` it. A CR
    that ends ``chunk`` is judged with the next chunk, or as the file's last byte."""
    if before.endswith(b"\r") and not chunk.startswith(b"\n"):
        return True
    return _matches(rb"\r[^\n]", chunk)


def _check_chunk(
    decoder: codecs.IncrementalDecoder, chunk: bytes, offset: int, lines: int
) -> str | None:
    try:
        # ASCII is valid UTF-8; checking for it is ten times cheaper than decoding.
        if not (chunk.isascii() and decoder.getstate()[0] == b""):
            decoder.decode(chunk)
    except UnicodeDecodeError as exc:
        line = lines + chunk.count(b"\n", 0, exc.start) + 1
        return (
            f"not valid UTF-8 (line {line}, byte offset {offset + exc.start}: "
            f"byte 0x{chunk[exc.start]:02x}); convert the file to UTF-8"
        )
    nul = chunk.find(b"\x00")
    if nul >= 0:
        line = lines + chunk.count(b"\n", 0, nul) + 1
        return (
            f"not a UTF-8 text file: NUL byte on line {line} (byte offset {offset + nul}); "
            "UTF-16 or binary data? convert the file to UTF-8"
        )
    return None


@dataclass(frozen=True)
class Header:
    record: Record | None  # None for an empty (or all blank) file
    names: list[str]  # trimmed, lower-cased


class UnparsableHeader(ValueError):
    pass


def read_header(path: Path) -> Header:
    """The first non-blank record, as normalised column names. Reads only as far as needed."""
    with path.open("r", encoding="utf-8-sig", newline="\n") as handle:
        try:
            for record in iter_records(physical_lines(handle)):
                if record.fields is None:
                    raise UnparsableHeader(
                        f"the header on line {record.line} has malformed quoting"
                    )
                return Header(record, [f.strip(" \t").lower() for f in record.fields])
        except UnterminatedQuote as exc:
            raise UnparsableHeader(f"cannot parse the header: {exc}") from None
    return Header(None, [])
