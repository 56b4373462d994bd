"""One sequential pass over a file's bytes before Spark sees it: content hash, size, UTF-8
validity, and the facts that decide how the file is parsed."""

from __future__ import annotations

import codecs
import hashlib
from dataclasses import dataclass
from pathlib import Path

from spark_loaders.ingest.csv_split import (
    Record,
    UnterminatedQuote,
    iter_records,
    physical_lines,
)

CHUNK = 8 << 20
BOM = b"\xef\xbb\xbf"


@dataclass(frozen=True)
class Prescan:
    sha256: str
    size: int
    encoding_error: str | None  # why the bytes are not acceptable UTF-8 text, or None
    has_quote: bool  # any '"' in the file: the parallel parser must check its quoting


def prescan(path: Path) -> Prescan:
    digest = hashlib.sha256()
    decoder = codecs.getincrementaldecoder("utf-8")("strict")
    size = 0
    lines_before = 0
    has_quote = False
    error: str | None = None
    with path.open("rb") as handle:
        while chunk := handle.read(CHUNK):
            digest.update(chunk)
            if error is None:
                error = _check_chunk(decoder, chunk, size, lines_before)
                lines_before += chunk.count(b"\n")
            has_quote = has_quote or b'"' in chunk
            size += len(chunk)
    if error is None:
        try:
            decoder.decode(b"", final=True)
        except UnicodeDecodeError:
            error = "not valid UTF-8: the file ends in the middle of a multi-byte character"
    return Prescan(digest.hexdigest(), size, error, has_quote)


def _check_chunk(
    decoder: codecs.IncrementalDecoder, chunk: bytes, offset: int, lines: int
) -> str | None:
    try:
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
