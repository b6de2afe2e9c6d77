"""The read model's rebuild: what it resets, how far it got, and reports read during one."""

from typing import Annotated, TypeVar

from fastapi import Depends, Request
from sqlalchemy import text
from sqlmodel.ext.asyncio.session import AsyncSession

from services.metrics.schemas import RebuildUnderWay, Report
from shared.archive import Progress


async def rebuild_progress_now(request: Request) -> Progress:
    (runner,) = request.app.state.runtime.consumers
    progress: Progress = await runner.archive.progress()
    return progress


RebuildBefore = Annotated[Progress, Depends(rebuild_progress_now)]
"""How far a rebuild had got as the request came in (a dependency, so before the report)."""

ReportT = TypeVar("ReportT", bound=Report)


async def said_partial(request: Request, report: ReportT, before: Progress) -> ReportT:
    """The report, saying so when a rebuild was under way as it was read, before or after (one
    finishing meanwhile may have left it half built): its figures are partial then."""
    after = await rebuild_progress_now(request)
    if before.replaying or after.replaying:
        progress = after if after.replaying else before
        report.rebuilding = RebuildUnderWay(done=progress.done, events=progress.total)
    return report


async def reset_read_model(session: AsyncSession) -> None:
    tables = (
        "lead_facts, proposal_facts, source_names, rep_names, leads_before_archive, hand_offs, hand_off_ends"
    )
    await session.execute(text(f"TRUNCATE {tables}"))


async def leads_before_archive(session: AsyncSession) -> int:
    """How many leads still counted were counted before metrics kept its archive (an older
    Leadflow, upgraded: migration 0021): a rebuild, which replays the archive alone, drops them."""
    counted = "SELECT count(*) FROM leads_before_archive JOIN lead_facts USING (lead_id)"
    return int((await session.execute(text(counted))).scalar_one())


def before_archive_refusal(leads: int) -> str:
    return (
        f"{leads} leads were counted before metrics kept its archive of events (a Leadflow from"
        " before 2 December 2026, upgraded): a rebuild replays the archive alone and would drop them"
        " from every report for good. Nothing was reset. To rebuild anyway and lose them:"
        " POST /v1/rebuild?drop_unarchived=true"
    )
