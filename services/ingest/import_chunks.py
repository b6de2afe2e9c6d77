"""Applying an import's rows a chunk at a time: each row prepared as a lead or refused with its
reasons, then the chunk stored in one transaction together with the import's progress, so the
report is never ahead of or behind what is stored (retried on transient faults, never twice)."""

import asyncio
import logging
from collections.abc import Iterable
from dataclasses import replace
from datetime import datetime
from uuid import UUID

from sqlalchemy import func, select, update
from sqlmodel.ext.asyncio.session import AsyncSession

from services.ingest import erased_contacts
from services.ingest.capture import Client, Submission, capture, prepare
from services.ingest.enquiry_dates import EnquiryDates
from services.ingest.forms import lead_from_form
from services.ingest.import_files import MISFIT, Record, undecoded
from services.ingest.lead_lookup import prefetch
from services.ingest.models import Import, ImportRejection, Source
from shared.db import Database, defer_insert
from shared.faults import is_transient, raced_a_unique_row, raise_hidden_stop
from shared.http import Fault, InvalidInput, typed

log = logging.getLogger(__name__)
CHUNK_ROWS = 500
IMPORTS = Import.__table__  # type: ignore[attr-defined]
REJECTIONS = ImportRejection.__table__  # type: ignore[attr-defined]

Place = tuple[int, int]  # a row's number (1 = the first after the header) and the line it starts on
Rejection = tuple[Place, list[dict[str, str]]]  # a row's place and each field's reason


class ImportAbandoned(Exception):
    """The import was reported interrupted while this process still applied it (it made no
    progress for `import_stall_seconds`): it stops, and the file sent again takes over."""


async def apply_rows(
    db: Database,
    source: Source,
    import_id: UUID,
    rows: Iterable[Record],
    region: str,
    dates: EnquiryDates = EnquiryDates(),
) -> None:
    """Apply the rows (numbered from 1) in chunks of CHUNK_ROWS, each dated by `dates`."""
    chunk: list[tuple[int, Record]] = []
    for number, row in enumerate(rows, start=1):
        chunk.append((number, row))
        if len(chunk) == CHUNK_ROWS:
            await apply_chunk(db, source, import_id, chunk, region, dates)
            chunk = []
    if chunk:
        await apply_chunk(db, source, import_id, chunk, region, dates)


async def apply_chunk(
    db: Database,
    source: Source,
    import_id: UUID,
    chunk: list[tuple[int, Record]],
    region: str,
    dates: EnquiryDates = EnquiryDates(),
) -> None:
    ready, rejected = _prepare(source, chunk, region, dates)
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


def _prepare(
    source: Source, chunk: list[tuple[int, Record]], region: str, dates: EnquiryDates
) -> tuple[list[tuple[Place, Submission]], list[Rejection]]:
    """The chunk's rows ready to capture, and those refused (not fitting the header, not text
    in the file's encoding, not a valid lead, or an enquiry date unreadable or ahead)."""
    ready: list[tuple[Place, Submission]] = []
    rejected: list[Rejection] = []
    vouched = source.scope == "history"
    for number, row in chunk:
        place = (number, row.line)
        if row.misfit:
            rejected.append((place, _reasons([(MISFIT, row.misfit, "row_misfit")])))
            continue
        if errors := undecoded(row):
            rejected.append((place, _reasons(errors)))
            continue
        enquired_at, faults = _dated(dates, row)
        try:
            fields = [(k, v) for k, v in row.fields if k != dates.column] if dates.column else row.fields
            lead = lead_from_form(fields, None)
            submission = prepare(source, lead, region, Client(), activity="imported", vouched=vouched)
        except InvalidInput as error:
            faults += error.typed
        if faults:
            rejected.append((place, _reasons(faults)))
            continue
        ready.append((place, replace(submission, occurred_at=enquired_at)))
    return ready, rejected


def _dated(dates: EnquiryDates, row: Record) -> tuple[datetime | None, list[Fault]]:
    """When the row's person enquired (None: when it is imported), or why its date is refused,
    naming the column as the file does."""
    try:
        return dates.of(row.fields), []
    except ValueError as error:
        return None, [(str(dates.column), str(error), "enquiry_date")]


def _at(ready: list[tuple[Place, Submission]], indexes: set[int]) -> list[tuple[Place, Submission]]:
    return [each for index, each in enumerate(ready) if index in indexes]


def _reasons(errors: Iterable[Fault]) -> list[dict[str, str]]:
    return [{"field": field, "reason": reason, "type": kind} for field, reason, kind in map(typed, errors)]


async def _store_chunk(
    session: AsyncSession,
    source: Source,
    import_id: UUID,
    ready: list[tuple[Place, Submission]],
    rejected: list[Rejection],
    span: tuple[int, int],
) -> None:
    """Store the chunk of `span` (its first row's number, its rows), once: an attempt whose
    commit went through unanswered (`shared.db.CommitUnknown`) left the report past it, and
    the chunk is not stored again (its leads would merge, but every count would double)."""
    first, rows = span
    held = select(IMPORTS.c.rows_done, IMPORTS.c.status, IMPORTS.c.started_at).where(
        IMPORTS.c.id == import_id
    )
    done, status, started_at = (await session.execute(held.with_for_update())).one()
    if status != "running":
        raise ImportAbandoned
    if done >= first:
        return
    created = stored = 0
    rejected = list(rejected)  # this attempt's: a retried chunk starts again from the caller's
    people = [(submission.email, submission.phone) for _, submission in ready]
    # The people the chunk names, read and locked in one query (in id order), as a group of
    # form posts is: each capture then finds its lead in memory, not with a query of its own.
    await prefetch(session, people)
    # Then those erased since the import started (after the locks: an erasure either committed
    # before, and is seen here, or waits for this chunk and erases what it stored).
    if erased := await erased_contacts.erased_since(session, started_at, people):
        refused = _reasons([("email", erased_contacts.ERASED, "erased")])
        rejected += [(place, refused) for place, _ in _at(ready, erased)]
        ready = [each for index, each in enumerate(ready) if index not in erased]
    for place, submission in ready:
        try:
            created += (await capture(session, source, submission)).created
            stored += 1
        except InvalidInput as error:  # refused before it wrote anything (a profile over its bounds)
            rejected.append((place, _reasons(error.typed)))
    for (number, line), errors in rejected:
        row = {"import_id": import_id, "row": number, "line": line, "errors": errors}
        defer_insert(session, REJECTIONS, row)
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
