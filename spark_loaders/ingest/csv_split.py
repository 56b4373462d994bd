"""The CSV dialect, in pure Python: RFC 4180 records over physical lines.

This is the exact, sequential parser. It defines the dialect; the parallel Spark parser in
:mod:`spark_loaders.ingest.records_spark` implements the same grammar for the common case
(every record on one line) and hands any other file to this one.

Grammar of a record: fields separated by ``,``. A field that starts with ``"`` is quoted: it
runs to the next ``"`` that is not doubled, may contain ``,``, ``""`` (one quote) and line
breaks, and must be followed by ``,`` or the end of the record. Any other field runs to the
next ``,`` and is taken literally (a ``"`` inside it is an ordinary character).

Physical lines end at LF; a CR right before the LF is part of the terminator (CRLF). Lines
that hold only spaces and tabs are blank: skipped, not counted, but they keep their line
numbers.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

# Possessive repetition: once a doubled quote is consumed it is never given back, so an
# unterminated field is reported as open instead of matching a shorter prefix.
_QUOTED = re.compile(r'"((?:[^"]|"")*+)"', re.S)

BLANK_CHARS = " \t"


class _Open:
    """The text ends inside a quoted field: the record continues on the next line."""


class _Malformed:
    """A closing quote is followed by something other than a comma or the end."""


OPEN = _Open()
MALFORMED = _Malformed()


def split_record(text: str) -> list[str] | _Open | _Malformed:
    fields: list[str] = []
    pos = 0
    end = len(text)
    while True:
        if pos < end and text[pos] == '"':
            match = _QUOTED.match(text, pos)
            if match is None:
                return OPEN
            fields.append(match.group(1).replace('""', '"'))
            pos = match.end()
            if pos == end:
                return fields
            if text[pos] != ",":
                return MALFORMED
            pos += 1
        else:
            comma = text.find(",", pos)
            if comma < 0:
                fields.append(text[pos:])
                return fields
            fields.append(text[pos:comma])
            pos = comma + 1


def is_blank(line: str) -> bool:
    return not line.strip(BLANK_CHARS)


@dataclass(frozen=True)
class Record:
    line: int  # 1-based physical line where the record starts
    last_line: int  # physical line where it ends
    raw: str  # the record's text, its internal line breaks as LF, without its terminator
    fields: list[str] | None  # None when the quoting is malformed


class UnterminatedQuote(ValueError):
    def __init__(self, line: int) -> None:
        super().__init__(f"a quoted field opened on line {line} is never closed")
        self.line = line


def physical_lines(lines: Iterable[str]) -> Iterator[str]:
    """Strip the line terminator (LF or CRLF) from lines read with ``newline='\\n'``."""
    for line in lines:
        if line.endswith("\n"):
            line = line[:-1]
        if line.endswith("\r"):
            line = line[:-1]
        yield line


def continues_open(line: str) -> bool:
    """Given that the record so far ends inside a quoted field, does it still do so after
    ``line``? Scans ``line`` once, with the grammar of :func:`split_record`; this is what
    keeps a record spanning many lines (or an unclosed quote) linear instead of re-splitting
    the growing record at every line."""
    pos, end, inside = 0, len(line), True
    while True:
        if inside:
            quote = line.find('"', pos)
            if quote < 0:
                return True
            if quote + 1 < end and line[quote + 1] == '"':
                pos = quote + 2  # a doubled quote inside the field
                continue
            pos, inside = quote + 1, False
            if pos == end or line[pos] != ",":
                return False  # the record ends here (or its quoting is malformed)
            pos += 1
        if pos < end and line[pos] == '"':
            pos, inside = pos + 1, True
            continue
        comma = line.find(",", pos)
        if comma < 0:
            return False
        pos = comma + 1


def iter_records(lines: Iterable[str]) -> Iterator[Record]:
    """Records (blank lines skipped) from physical lines without their terminators."""
    start = 0
    parts: list[str] = []
    number = 0
    for number, line in enumerate(lines, start=1):
        if not parts:
            if is_blank(line):
                continue
            start = number
            parts.append(line)
            result = split_record(line)
        else:
            parts.append(line)
            if continues_open(line):
                continue
            result = split_record("\n".join(parts))
        if result is OPEN:
            continue
        text = "\n".join(parts) if len(parts) > 1 else line
        parts = []
        fields = None if result is MALFORMED else result
        yield Record(start, number, text, fields)  # type: ignore[arg-type]
    if parts:
        raise UnterminatedQuote(start)
