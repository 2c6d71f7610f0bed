"""Strict readers of uploaded CSV and NDJSON files, shared by every import and feed.

A file that is structurally broken fails whole with a `FileFormatError` naming the 1-based line where it
broke: bad UTF-8, a NUL byte, an unterminated quoted cell (which would otherwise swallow the rest of the
file into one cell), a row whose cell count differs from the header's, a cell, line, row or column count
over its limit, an NDJSON line that is not a JSON object or nests too deep or holds a number that cannot
be stored (NaN, 1e400). Callers read the whole file once with a reader before importing anything, or
import from a reader that has already been run to the end, so a broken file imports nothing.

Readers take a binary file object (an upload's spool) and yield rows lazily; memory stays bounded by the
line limit whatever the file's size.
"""

from __future__ import annotations

import csv
from collections.abc import Iterator
from dataclasses import dataclass
from typing import IO, Any

from servicekit.bounds import JSONLimitError, loads_json

BOM = "\ufeff"


@dataclass(frozen=True)
class FileLimits:
    """Bounds of an uploaded file; each service documents the values it uses."""

    max_rows: int = 1_000_000
    max_columns: int = 100
    max_cell_chars: int = 64 * 1024
    max_line_bytes: int = 1024 * 1024
    max_depth: int = 32


class FileFormatError(ValueError):
    """The file cannot be read as the format it claims; `line` is 1-based (None: the file as a whole)."""

    def __init__(self, message: str, *, line: int | None = None) -> None:
        super().__init__(f"line {line}: {message}" if line is not None else message)
        self.message = message
        self.line = line


@dataclass(frozen=True, slots=True)
class CsvRow:
    number: int
    """1-based data row (the header is row 0)."""
    line: int
    """1-based line of the file where the row starts."""
    cells: dict[str, str]


def _lines(source: IO[bytes], limits: FileLimits, counter: list[int]) -> Iterator[str]:
    """Decoded lines of a binary file, each checked for size, UTF-8 and NUL bytes; `counter[0]` is the
    number of lines read so far."""
    first = True
    while True:
        raw = source.readline(limits.max_line_bytes + 1)
        if not raw:
            return
        counter[0] += 1
        if len(raw) > limits.max_line_bytes:
            raise FileFormatError(f"the line is longer than {limits.max_line_bytes} bytes", line=counter[0])
        if b"\x00" in raw:
            raise FileFormatError("the line holds a NUL byte (is this a binary file?)", line=counter[0])
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise FileFormatError(
                f"not UTF-8 text (byte 0x{raw[exc.start]:02x} at column {exc.start + 1})", line=counter[0]
            ) from None
        if first:
            first = False
            text = text.removeprefix(BOM)
        yield text


class CsvReader:
    """Rows of a CSV file as dicts keyed by the header's column names, strictly checked.

    `header` is read on construction (FileFormatError if there is none, or it repeats a name). Iterating
    yields `CsvRow`s; a blank line is skipped."""

    def __init__(self, source: IO[bytes], limits: FileLimits | None = None) -> None:
        self.limits = limits or FileLimits()
        self._counter = [0]
        self._reader = csv.reader(_lines(source, self.limits, self._counter), strict=True)
        header = self._next_record()
        if header is None:
            raise FileFormatError("the file is empty (a header row is needed)")
        names = [name.strip() for name in header[1]]
        if len(names) > self.limits.max_columns:
            raise FileFormatError(f"more than {self.limits.max_columns} columns", line=header[0])
        if not any(names):
            raise FileFormatError("the header row is empty", line=header[0])
        repeated = sorted({name for name in names if names.count(name) > 1})
        if repeated:
            raise FileFormatError(f"the header repeats column(s) {', '.join(repeated)}", line=header[0])
        self.header = names

    def _next_record(self) -> tuple[int, list[str]] | None:
        """The next non-blank record and the line it starts on."""
        while True:
            start = self._counter[0] + 1
            try:
                record = next(self._reader)
            except StopIteration:
                return None
            except csv.Error as exc:
                raise FileFormatError(_csv_problem(exc, self.limits), line=start) from None
            if record:
                return start, record

    def __iter__(self) -> Iterator[CsvRow]:
        width = len(self.header)
        limit = self.limits.max_cell_chars
        number = 0
        while (item := self._next_record()) is not None:
            line, record = item
            number += 1
            if number > self.limits.max_rows:
                raise FileFormatError(f"the file has more than {self.limits.max_rows} rows", line=line)
            if len(record) != width:
                raise FileFormatError(
                    f"the row has {len(record)} cells but the header has {width} columns", line=line
                )
            for index, cell in enumerate(record):
                if len(cell) > limit:
                    raise FileFormatError(
                        f"the cell of column {self.header[index]!r} is longer than {limit} characters",
                        line=line,
                    )
            yield CsvRow(number, line, dict(zip(self.header, record, strict=True)))


def _csv_problem(exc: csv.Error, limits: FileLimits) -> str:
    text = str(exc)
    if "unexpected end of data" in text:
        return "a quoted cell starting on this line is never closed (unterminated quote)"
    if "field larger than field limit" in text:
        return f"a cell is longer than {limits.max_cell_chars} characters"
    if "expected after" in text:
        return 'a quote inside a quoted cell must be doubled (""), or the cell must end at the quote'
    if "new-line character seen in unquoted field" in text:
        return "a line break inside an unquoted cell (carriage return without line feed?)"
    return f"not valid CSV ({text})"


@dataclass(frozen=True, slots=True)
class JsonLine:
    number: int
    """1-based data row (blank lines do not count)."""
    line: int
    """1-based line of the file."""
    value: dict[str, Any]
    repeated: tuple[str, ...] = ()
    """Paths of the keys an object of the line holds more than once (`value` has the last one's value):
    the row is ambiguous, for the importer to refuse in its error mode."""


def read_ndjson(source: IO[bytes], limits: FileLimits | None = None) -> Iterator[JsonLine]:
    """Each non-blank line of an NDJSON file as a JSON object, strictly checked."""
    limits = limits or FileLimits()
    counter = [0]
    number = 0
    for text in _lines(source, limits, counter):
        if not text.strip():
            continue
        number += 1
        if number > limits.max_rows:
            raise FileFormatError(f"the file has more than {limits.max_rows} rows", line=counter[0])
        repeated: list[str] = []
        try:
            value = loads_json(text, max_depth=limits.max_depth, repeated=repeated)
        except JSONLimitError as exc:
            raise FileFormatError(str(exc), line=counter[0]) from None
        if not isinstance(value, dict):
            raise FileFormatError("each line must be a JSON object", line=counter[0])
        yield JsonLine(number, counter[0], value, tuple(repeated))


def check_file(source: IO[bytes], fmt: str, limits: FileLimits | None = None) -> int:
    """Read the whole file to check its structure; the number of rows. The file is rewound after."""
    rows = 0
    try:
        for _ in CsvReader(source, limits) if fmt == "csv" else read_ndjson(source, limits):
            rows += 1
    finally:
        source.seek(0)
    return rows
