"""The strict CSV/NDJSON readers every import uses: good files read whole, broken ones name their line."""

from __future__ import annotations

import io

import pytest

from servicekit.bounds import JSONLimitError, loads_json
from servicekit.files import CsvReader, FileFormatError, FileLimits, check_file, read_ndjson


def _csv(text: str | bytes, limits: FileLimits | None = None) -> list[tuple[int, int, dict[str, str]]]:
    data = text.encode() if isinstance(text, str) else text
    return [(row.number, row.line, row.cells) for row in CsvReader(io.BytesIO(data), limits)]


def test_a_good_csv_reads_with_bom_crlf_blank_lines_and_a_quoted_line_break() -> None:
    text = '\ufeffa,b\r\n1,"two\r\nlines"\r\n\r\n3,"say ""hi"""\r\n'

    assert _csv(text) == [
        (1, 2, {"a": "1", "b": "two\r\nlines"}),
        (2, 5, {"a": "3", "b": 'say "hi"'}),
    ]


@pytest.mark.parametrize(
    ("text", "line", "fragment"),
    [
        ('a,b\n1,2\n3,"4\n5,6\n', 3, "unterminated quote"),
        ('a,b\n1,"x"y\n', 2, "quote inside a quoted cell"),
        ("a,b\n1,2\n3\n", 3, "1 cells but the header has 2"),
        ("a,b\n1,2,3\n", 2, "3 cells"),
        (b"a,b\n1,\xff\n", 2, "not UTF-8"),
        ("a,b\n1,\x00\n", 2, "NUL"),
        ("a,a\n1,2\n", 1, "repeats column(s) a"),
    ],
)
def test_a_broken_csv_names_the_line(text: str | bytes, line: int, fragment: str) -> None:
    with pytest.raises(FileFormatError) as caught:
        _csv(text)

    assert caught.value.line == line
    assert fragment in caught.value.message


@pytest.mark.parametrize(
    ("limits", "text", "fragment"),
    [
        (FileLimits(max_rows=2), "a\n1\n2\n3\n", "more than 2 rows"),
        (FileLimits(max_columns=2), "a,b,c\n", "more than 2 columns"),
        (FileLimits(max_cell_chars=3), "a\nabcd\n", "longer than 3 characters"),
        (FileLimits(max_line_bytes=10), "a\n" + "x" * 11 + "\n", "longer than 10 bytes"),
    ],
)
def test_csv_limits(limits: FileLimits, text: str, fragment: str) -> None:
    with pytest.raises(FileFormatError, match=fragment):
        _csv(text, limits)


def test_an_empty_csv_has_no_header() -> None:
    with pytest.raises(FileFormatError, match="empty"):
        _csv("")


def test_ndjson_rows_skip_blank_lines_and_keep_file_lines() -> None:
    lines = list(read_ndjson(io.BytesIO(b'{"a": 1}\n\n{"a": 2}\n')))

    assert [(line.number, line.line, line.value) for line in lines] == [(1, 1, {"a": 1}), (2, 3, {"a": 2})]


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ('{"a": ' + "[" * 100 + "]" * 100 + "}", "nested deeper than 32"),
        ('{"a": ' + "[" * 5000 + "]" * 5000 + "}", "nested deeper"),
        ('{"a": 1e400}', "finite"),
        ('{"a": -Infinity}', "finite"),
        ('{"a": NaN}', "finite"),
        ('{"a": 1' + "0" * 30 + "}", "64-bit"),
        ('{"a": 1' + "0" * 5000 + "}", "not valid JSON"),
        ('{"a": ', "not valid JSON"),
        ("3", "JSON object"),
    ],
)
def test_a_broken_ndjson_line_names_its_line(text: str, fragment: str) -> None:
    data = b'{"ok": true}\n' + text.encode() + b"\n"

    with pytest.raises(FileFormatError) as caught:
        list(read_ndjson(io.BytesIO(data)))

    assert caught.value.line == 2
    assert fragment in caught.value.message


def test_check_file_counts_rows_and_rewinds() -> None:
    source = io.BytesIO(b"a\n1\n2\n")

    assert check_file(source, "csv") == 2
    assert source.tell() == 0


def test_loads_json_names_the_path_of_a_bad_number() -> None:
    with pytest.raises(JSONLimitError) as caught:
        loads_json('{"x": [1, {"y": NaN}]}')

    assert caught.value.path == "x.1.y"
