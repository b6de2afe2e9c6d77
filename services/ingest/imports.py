"""CSV imports (trade-show lists, purchased lists, call lists): spooled to disk as they arrive,
then applied in chunks, each chunk one transaction together with the import's progress, so
the report is never ahead of or behind what is stored."""

import asyncio
import csv
import io
import logging
import re
import sys
import tempfile
from collections.abc import Iterator
from datetime import timedelta
from typing import IO, Any
from uuid import UUID

from sqlalchemy import func, select, update
from sqlmodel.ext.asyncio.session import AsyncSession

from services.ingest.capture import Client, Submission, capture, prepare
from services.ingest.forms import lead_from_form
from services.ingest.models import Import, ImportRejection, Source
from shared.db import Database, defer_insert
from shared.faults import cancelled_from_outside, is_transient, raced_a_unique_row, raise_hidden_stop
from shared.http import InvalidInput, where

log = logging.getLogger(__name__)
CHUNK_ROWS = 500
MAX_REJECTIONS_SHOWN = 1000
IMPORTS = Import.__table__  # type: ignore[attr-defined]
REJECTIONS = ImportRejection.__table__  # type: ignore[attr-defined]


DELIMITERS = {",": ",", ";": ";", "tab": "\t", "\t": "\t"}
HEADER_SAMPLE = 8 * 1024  # the header row, where the delimiter is told


NOT_UTF8 = "is not UTF-8 text: save the file as UTF-8 (CSV UTF-8 in Excel)"
_UNDECODED = re.compile("[\udc80-\udcff]")  # a byte UTF-8 could not decode, kept as surrogateescape does


class ImportTooLarge(Exception):
    pass


class UnreadableFile(Exception):
    """The file as a whole cannot be read; the message says why, for the report."""


class ImportAbandoned(Exception):
    """The import was reported interrupted while this process still applied it (it made no
    progress for `import_stall_seconds`): it stops, and the file sent again takes over."""


class ImportRunning(Exception):
    """The source already has an import running: one at a time per source."""


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


def read_rows(raw: IO[bytes], delimiter: str | None = None) -> Iterator[list[tuple[str, str]]]:
    """Each data row as (header, value) pairs. UTF-8 with or without a BOM; the delimiter
    (comma, semicolon or tab, as spreadsheets export) is the one given, else told from the
    header row. A byte that is not UTF-8 stays in its value as a lone surrogate (`undecoded`
    finds it), so only its row is refused; a field may be as long as the file (the rules on
    each lead field's length refuse the row, not the csv module's 128 KiB limit the file)."""
    csv.field_size_limit(sys.maxsize)  # the body is capped at LEADFLOW_MAX_IMPORT_BYTES already
    text = io.TextIOWrapper(raw, encoding="utf-8-sig", errors="surrogateescape", newline="")
    if delimiter is None:
        delimiter = delimiter_of(text.readline(HEADER_SAMPLE))
        text.seek(0)
    try:
        reader = csv.reader(text, delimiter=delimiter)
        header = [name.strip() for name in _read(reader) or []]
        if any(_UNDECODED.search(name) for name in header):
            raise UnreadableFile(f"the header row {NOT_UTF8}")
        while (values := _read(reader)) is not None:
            if any(v.strip() for v in values):
                yield list(zip(header, values, strict=False))
    finally:
        text.detach()  # leave the file open for the caller


def _read(reader: Any) -> list[str] | None:
    try:
        return next(reader, None)
    except csv.Error as error:  # its text names the fault, not the data
        raise UnreadableFile(f"line {reader.line_num} is not CSV: {error}") from None


def undecoded(row: list[tuple[str, str]]) -> list[tuple[str, str]]:
    """The row's fields holding bytes that were not UTF-8, each with the reason."""
    return [(name, NOT_UTF8) for name, value in row if _UNDECODED.search(value)]


def count_rows(raw: IO[bytes], delimiter: str | None = None) -> int:
    total = sum(1 for _ in read_rows(raw, delimiter))
    raw.seek(0)
    return total


async def check_idle(session: AsyncSession, source_id: UUID, stalled_seconds: float) -> None:
    """Raise ImportRunning while the source has an import making progress (one that stalled
    was left by a process that died: it does not count)."""
    running = await session.scalar(
        select(func.count())
        .select_from(IMPORTS)
        .where(
            IMPORTS.c.source_id == source_id,
            IMPORTS.c.status == "running",
            IMPORTS.c.progress_at >= func.now() - timedelta(seconds=stalled_seconds),
        )
    )
    if running:
        raise ImportRunning("this source has an import running; send the next file when it is done")


async def start(db: Database, source: Source, filename: str | None, stalled_seconds: float) -> UUID:
    """Record a new running import; raises ImportRunning if the source has one (two requests
    at once take turns on the source's lock, so only one starts)."""
    async with db.transaction() as session:
        await session.execute(select(func.pg_advisory_xact_lock(func.hashtext(f"import:{source.id}"))))
        await check_idle(session, source.id, stalled_seconds)
        record = Import(source_id=source.id, filename=filename, status="running")
        session.add(record)
    return record.id


async def run(
    db: Database, source: Source, import_id: UUID, raw: IO[bytes], region: str, delimiter: str | None = None
) -> None:
    """Apply every row; the report is updated with each chunk. Never raises."""
    try:
        total = await asyncio.to_thread(count_rows, raw, delimiter)
        await _set(db, import_id, rows_total=total)
        chunk: list[tuple[int, list[tuple[str, str]]]] = []
        for number, row in enumerate(read_rows(raw, delimiter), start=1):
            chunk.append((number, row))
            if len(chunk) == CHUNK_ROWS:
                await _apply_chunk(db, source, import_id, chunk, region)
                chunk = []
        if chunk:
            await _apply_chunk(db, source, import_id, chunk, region)
        await _set(db, import_id, status="done", finished_at=func.now())
    except asyncio.CancelledError:
        await asyncio.shield(_set(db, import_id, status="interrupted", finished_at=func.now()))
        raise
    except ImportAbandoned:
        log.warning("import %s stopped: it was reported interrupted after a stall", import_id)
    except UnreadableFile as error:
        log.warning("import %s failed: %s", import_id, error)
        await _set(db, import_id, status="failed", error=str(error), finished_at=func.now())
    except Exception as error:  # logged by type and lines: its text may quote a row
        if cancelled_from_outside():  # a stop that failed as it unwound: interrupted, not failed
            await asyncio.shield(_set(db, import_id, status="interrupted", finished_at=func.now()))
            raise asyncio.CancelledError from error
        log.error("import %s failed: %s\n%s", import_id, type(error).__name__, where(error))
        reason = f"the import stopped on an unexpected error ({type(error).__name__}); send the file again"
        await _set(db, import_id, status="failed", error=reason, finished_at=func.now())
    finally:
        raw.close()


async def _apply_chunk(
    db: Database, source: Source, import_id: UUID, chunk: list[tuple[int, list[tuple[str, str]]]], region: str
) -> None:
    ready: list[tuple[int, Submission]] = []
    rejected: list[tuple[int, list[dict[str, str]]]] = []
    for number, row in chunk:
        if errors := undecoded(row):
            rejected.append((number, [{"field": f, "reason": r} for f, r in errors]))
            continue
        try:
            ready.append(
                (
                    number,
                    prepare(
                        source,
                        lead_from_form(row, None),
                        region,
                        Client(),
                        activity="imported",
                        vouched=source.scope == "history",
                    ),
                )
            )
        except InvalidInput as error:
            rejected.append((number, [{"field": f, "reason": r} for f, r in error.errors]))
    for attempt in range(1, 6):
        try:
            async with db.transaction() as session:
                await _store_chunk(session, source, import_id, ready, rejected, (chunk[0][0], len(chunk)))
            return
        except Exception as error:
            raise_hidden_stop(error)
            # A form post or another replica stored one of the chunk's new people first: done
            # again, the chunk merges into them.
            if not (is_transient(error) or raced_a_unique_row(error)) or attempt == 5:
                raise
            log.warning("import %s: chunk failed (%r), retrying", import_id, error)
            await asyncio.sleep(0.5 * 2**attempt)  # backing off while the database recovers


async def _store_chunk(
    session: AsyncSession,
    source: Source,
    import_id: UUID,
    ready: list[tuple[int, Submission]],
    rejected: list[tuple[int, list[dict[str, str]]]],
    span: tuple[int, int],
) -> None:
    """Store the chunk of `span` (its first row's number, its rows), once: an attempt whose
    commit went through unanswered (`shared.db.CommitUnknown`) left the report past it, and
    the chunk is not stored again (its leads would merge, but every count would double)."""
    first, rows = span
    held = select(IMPORTS.c.rows_done, IMPORTS.c.status).where(IMPORTS.c.id == import_id).with_for_update()
    done, status = (await session.execute(held)).one()
    if status != "running":
        raise ImportAbandoned
    if done >= first:
        return
    created = stored = 0
    rejected = list(rejected)  # this attempt's: a retried chunk starts again from the caller's
    for number, submission in ready:
        try:
            created += (await capture(session, source, submission)).created
            stored += 1
        except InvalidInput as error:  # refused before it wrote anything (a profile over its bounds)
            rejected.append((number, [{"field": f, "reason": r} for f, r in error.errors]))
    for number, errors in rejected:
        defer_insert(session, REJECTIONS, {"import_id": import_id, "row": number, "errors": errors})
    await session.execute(
        update(IMPORTS)
        .where(IMPORTS.c.id == import_id)
        .values(
            rows_done=IMPORTS.c.rows_done + rows,
            accepted=IMPORTS.c.accepted + created,
            merged=IMPORTS.c.merged + stored - created,
            rejected=IMPORTS.c.rejected + len(rejected),
            progress_at=func.now(),
        )
    )


async def _set(db: Database, import_id: UUID, **values: Any) -> None:
    """Update the import's report while it is still running (one reported interrupted after a
    stall stays so: the file sent again has taken over)."""
    async with db.transaction() as session:
        statement = update(IMPORTS).where(IMPORTS.c.id == import_id, IMPORTS.c.status == "running")
        await session.execute(statement.values(progress_at=func.now(), **values))


ABANDONED = (
    "The import stopped making progress (the process applying it ended). Send the file again: "
    "rows already stored are merged, not duplicated."
)


async def mark_abandoned(db: Database, stalled_seconds: float) -> int:
    """Imports still `running` with no progress for `stalled_seconds` were left by a process
    that died (a clean shutdown marks its own); report them as interrupted."""
    async with db.transaction() as session:
        result = await session.execute(
            update(IMPORTS)
            .where(
                IMPORTS.c.status == "running",
                IMPORTS.c.progress_at < func.now() - timedelta(seconds=stalled_seconds),
            )
            .values(status="interrupted", error=ABANDONED, finished_at=func.now())
        )
    count = int(result.rowcount)  # type: ignore[attr-defined]
    if count:
        log.warning("%d abandoned import(s) marked interrupted", count)
    return count


async def report(session: AsyncSession, import_id: UUID) -> tuple[Import, list[ImportRejection]] | None:
    found = await session.get(Import, import_id)
    if found is None:
        return None
    rows = await session.execute(
        select(REJECTIONS)
        .where(REJECTIONS.c.import_id == import_id)
        .order_by(REJECTIONS.c.row)
        .limit(MAX_REJECTIONS_SHOWN)
    )
    return found, [ImportRejection(**row._mapping) for row in rows]
