"""An uploaded CSV file: spooled to disk as it arrives, decoded as it is read (UTF-8, the
encoding its byte order mark names, or the one the user gave), its delimiter the one Excel's
`sep=` first line names or else told from the header row, its rows read as (header, value)
pairs with the line each starts on, and the fields that were not text in that encoding and the
rows that do not fit the header found."""

import csv
import io
import re
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from typing import IO, Any, NamedTuple

from services.ingest.import_encodings import UNDECODED, UNDECODED_BYTES, codec_of, not_text, read_in_of
from shared.inputs import unstorable

DELIMITERS = {",": ",", ";": ";", "tab": "\t", "\t": "\t"}
DELIMITER_NAMES = {",": "comma", ";": "semicolon", "\t": "tab"}
HEADER_SAMPLE = 8 * 1024  # the header row, where the delimiter is told
# Excel's first line naming the delimiter (it writes one and heeds one): the header row follows.
SEP_HINT = re.compile(r'sep=([^"\r\n])(?:\r\n|\r|\n)?', re.IGNORECASE)


UNCLOSED = (
    'a quote (") opens a field on line {line} and is never closed, so the rest of the file would'
    ' be read as that one field: close it, or write a quote inside a field as two (""); nothing'
    " was imported"
)
AFTER_CLOSING = (
    "line {line}: a field's closing quote (\") is followed by more text: write a quote inside a"
    ' field as two (""); nothing was imported'
)
REPEATED = (
    'the header row names "{name}" twice (columns {first} and {second}), so one column\'s values'
    " would be lost: rename or remove one; nothing was imported"
)
EMPTY = "the file is empty: it has no header row naming the lead fields, and no rows; nothing was imported"
NO_ROWS = "the file has a header row but no rows of leads under it; nothing was imported"
MISFIT = "columns"  # the field a row that does not fit the header is rejected on
TOO_FEW = (
    "line {line} has {count} where the header row names {named}: a value is missing, or a quote"
    " or {delimiter} is out of place; the row was not imported"
)
TOO_MANY = (
    "line {line} has {count} where the header row names {named}: put a value holding a"
    " {delimiter} in quotes, or remove the extra ones; the row was not imported"
)
NAMELESS = (
    "line {line} has a value in column {column}, which the header row gives no name: name the"
    " column, or leave it empty; the row was not imported"
)


class Record(NamedTuple):
    """A data row: the line of the file it starts on, as an editor or a spreadsheet numbers
    them (the header row is line 1; a quoted value may run over several lines), its (header,
    value) pairs, and why it does not fit the header when it does not."""

    line: int
    fields: list[tuple[str, str]]
    misfit: str | None = None
    encoding: str = "utf-8"  # what the file was read in, for the reason a field not text in it is refused


class ImportTooLarge(Exception):
    pass


MAX_COLUMNS = 1000
"""Columns a file may name: a lead keeps its fields, the utm tags and 50 custom fields, and a
CRM's export of every field it has stays well under. A header row of 100,000 names held the
service for seconds reading them, and made a report of megabytes."""


class UnreadableFile(Exception):
    """The file as a whole cannot be read; the message says why, for the report."""


def counted(count: int, one: str) -> str:
    """`1 value`, `2 values`."""
    return f"{count} {one}" if count == 1 else f"{count} {one}s"


def delimiter_of(header: str) -> str:
    """The delimiter of a file whose first line is `header`: the one of comma, semicolon and
    tab that occurs most often outside quotes (a header row names fields: it has one between
    every two names). Linear in the line's length, unlike csv.Sniffer."""
    counts = dict.fromkeys((",", ";", "\t"), 0)
    quoted = False
    for char in header:
        if char == '"':
            quoted = not quoted
        elif not quoted and char in counts:
            counts[char] += 1
    best = max(counts, key=counts.__getitem__)
    return best if counts[best] else ","


async def spool(chunks: Any, max_bytes: int) -> IO[bytes]:
    """Write the streamed body to a temporary file (memory first, disk when large)."""
    spooled: IO[bytes] = tempfile.SpooledTemporaryFile(max_size=8 * 2**20)  # noqa: SIM115 - returned
    size = 0
    async for chunk in chunks:
        size += len(chunk)
        if size > max_bytes:
            spooled.close()
            raise ImportTooLarge(f"the file is larger than {max_bytes} bytes")
        spooled.write(chunk)
    spooled.seek(0)
    return spooled


def read_rows(raw: IO[bytes], delimiter: str | None = None, encoding: str | None = None) -> Iterator[Record]:
    """Each data row (blank ones skipped) with the line it starts on. Decoded as it is read: in
    the encoding a byte order mark names (UTF-8's or UTF-16's), else the one given (an
    ENCODINGS key), else UTF-8; the delimiter (comma, semicolon or tab, as spreadsheets export)
    is the one given, else the one a first line `sep=;` names (Excel's hint, the header row then
    the next line), else told from the header row. A byte that is not text in the encoding
    stays in its value as a lone surrogate (`undecoded` finds it), so only its row is refused;
    a field may be as long as the file (the rules on each lead field's length refuse the row,
    not the csv module's 128 KiB limit the file)."""
    with _opened(raw, delimiter, encoding) as (header, reader, read_in):
        yield from _records(header, reader, read_in)


def survey(
    raw: IO[bytes], delimiter: str | None = None, encoding: str | None = None
) -> tuple[list[str], int]:
    """The header row and how many data rows follow it. The whole file is read, so one that
    cannot be read, or has no rows (a spreadsheet saved empty), is refused (UnreadableFile)
    before any row of it is stored."""
    with _opened(raw, delimiter, encoding) as (header, reader, _):
        total = sum(1 for _ in _records(header, reader))
    if not total:
        raise UnreadableFile(NO_ROWS if any(header) else EMPTY)
    raw.seek(0)
    return header, total


@contextmanager
def _opened(
    raw: IO[bytes], delimiter: str | None, encoding: str | None
) -> Iterator[tuple[list[str], Any, str]]:
    """The file's header row, checked, a reader at the first data row, and the encoding the
    file is read in. The text is decoded as the reader goes (an incremental decoder), never
    whole: a UTF-16 file takes no more memory than a UTF-8 one."""
    csv.field_size_limit(sys.maxsize)  # the body is capped at LEADFLOW_MAX_IMPORT_BYTES already
    read_in = read_in_of(raw, encoding)
    text = io.TextIOWrapper(raw, encoding=codec_of(read_in), errors=UNDECODED_BYTES, newline="")
    first = text.readline(HEADER_SAMPLE)
    hint = SEP_HINT.fullmatch(first)
    if delimiter is None:
        delimiter = hint.group(1) if hint else delimiter_of(first)
    text.seek(0)
    try:
        # strict: a quote left open took every row after it into one field (the import said
        # "done" with those rows lost); now the file is refused, naming the line.
        reader = csv.reader(text, delimiter=delimiter, strict=True)
        if hint:  # read by the reader, so the lines it counts stay the file's
            _read(reader)
        _, names = _read(reader)
        header = [name.strip() for name in names or []]
        if len(header) > MAX_COLUMNS:
            raise UnreadableFile(
                f"the header row names {len(header):,} columns; at most {MAX_COLUMNS:,} are read"
                " (leave out the columns no lead needs)"
            )
        if any(UNDECODED.search(name) for name in header):
            raise UnreadableFile(f"the header row {not_text(read_in)[0]}")
        if unnamed := _unstorable_name(header):
            raise UnreadableFile(unnamed)
        if repeated := _repeated(header):
            raise UnreadableFile(repeated)
        yield header, reader, read_in
    finally:
        text.detach()  # leave the file open for the caller


def _unstorable_name(header: list[str]) -> str | None:
    """Why the header cannot be used when a column's name is text no report can hold (a NUL):
    the report names the headers no field takes."""
    for column, name in enumerate(header, start=1):
        if reason := unstorable(name):
            return f"the header row's column {column} {reason}; nothing was imported"
    return None


def _repeated(header: list[str]) -> str | None:
    """Why the header cannot be used when it names a column twice: the rows' values would go
    to one field and the other's be lost without a word."""
    seen: dict[str, int] = {}
    for column, name in enumerate(header, start=1):
        if name in seen:
            return REPEATED.format(name=name, first=seen[name], second=column)
        if name:  # a column with no name (a spreadsheet's trailing delimiter) goes nowhere
            seen[name] = column
    return None


def _records(header: list[str], reader: Any, encoding: str = "utf-8") -> Iterator[Record]:
    """The data rows after the header. A row fits it when it has a value for each named column
    (unnamed ones at its end may be left out), nothing but blanks beyond them (spreadsheets end
    rows with delimiters) and nothing in a column between named ones that has no name: anything
    else would pad or cut the row and shift its values, or lose one."""
    named = len(header)
    while named and not header[named - 1]:
        named -= 1
    nameless = [i for i in range(named) if not header[i]]  # between named ones: a value there goes nowhere
    delimiter = DELIMITER_NAMES.get(reader.dialect.delimiter, repr(reader.dialect.delimiter))
    while True:
        line, values = _read(reader)
        if values is None:
            return
        if not any(v.strip() for v in values):
            continue
        misfit = None
        if len(values) < named:
            misfit = _misfit(TOO_FEW, line, len(values), named, delimiter)
        elif len(values) > named and any(v.strip() for v in values[named:]):
            misfit = _misfit(TOO_MANY, line, len(values), named, delimiter)
        elif (column := next((i + 1 for i in nameless if values[i].strip()), None)) is not None:
            misfit = NAMELESS.format(line=line, column=column)
        yield Record(line, list(zip(header, values, strict=False)), misfit, encoding)


def _misfit(reason: str, line: int, count: int, named: int, delimiter: str) -> str:
    return reason.format(
        line=line, count=counted(count, "value"), named=counted(named, "column"), delimiter=delimiter
    )


def _read(reader: Any) -> tuple[int, list[str] | None]:
    """The next row's values (None at the end of the file) and the line it begins on: the
    reader has counted every line read so far, those inside quoted values too."""
    started = reader.line_num + 1
    try:
        return started, next(reader, None)
    except csv.Error as error:  # its text names the fault, not the data
        if "unexpected end of data" in str(error):
            raise UnreadableFile(UNCLOSED.format(line=started)) from None
        if "expected after" in str(error):
            raise UnreadableFile(AFTER_CLOSING.format(line=reader.line_num)) from None
        raise UnreadableFile(f"line {reader.line_num} is not CSV: {error}") from None


def undecoded(record: Record) -> list[tuple[str, str, str]]:
    """The row's fields holding bytes that were not text in the file's encoding, each with the
    reason and its type."""
    faults = [name for name, value in record.fields if UNDECODED.search(value)]
    if not faults:
        return []
    reason, kind = not_text(record.encoding)
    return [(name, reason, kind) for name in faults]
