"""CSV imports (trade-show lists, purchased lists, call lists): one running at a time per source,
applied in the background with a report kept as it goes, and those a dead process left behind
reported interrupted. Reading the file is `import_files`; storing its rows, `import_chunks`."""

import asyncio
import logging
from dataclasses import replace
from datetime import timedelta
from typing import IO, Any
from uuid import UUID

from sqlalchemy import func, select, update
from sqlmodel.ext.asyncio.session import AsyncSession

from services.ingest import erased_contacts
from services.ingest.enquiry_dates import EnquiryDates, enquiry_column
from services.ingest.import_chunks import IMPORTS, REJECTIONS, ImportAbandoned, apply_rows
from services.ingest.import_files import UnreadableFile, read_rows, survey
from services.ingest.import_headers import unknown_headers
from services.ingest.models import Import, ImportRejection, Source
from shared.db import Database
from shared.faults import cancelled_from_outside
from shared.http import where

log = logging.getLogger(__name__)
MAX_REJECTIONS_SHOWN = 1000


class ImportRunning(Exception):
    """The source already has an import running: one at a time per source."""


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
    db: Database,
    source: Source,
    import_id: UUID,
    raw: IO[bytes],
    region: str,
    delimiter: str | None = None,
    encoding: str | None = None,
    dates: EnquiryDates = EnquiryDates(),
) -> None:
    """Apply every row; the report is updated with each chunk. Never raises. `encoding`: an
    import_files.ENCODINGS key, for a file without a byte order mark that is not UTF-8;
    `dates`: the time zone and clock of the rows' enquiry dates (the header names the column)."""
    try:
        header, total = await asyncio.to_thread(survey, raw, delimiter, encoding)
        unknown = await asyncio.to_thread(unknown_headers, header)  # difflib: off the event loop
        await _set(db, import_id, rows_total=total, unknown_headers=unknown)
        dates = replace(dates, column=enquiry_column(header))
        await apply_rows(db, source, import_id, read_rows(raw, delimiter, encoding), region, dates)
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
        await asyncio.shield(erased_contacts.forget_unneeded(db))


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
