"""GET /v1/proposals: the commercial proposals sent in a period, answered, stale and still
open, and the median days to an answer (DOMAIN.md "Follow-up": no answer in two weeks is too
long, watch the response times, 002:276). Stale or open is judged at the read, against the
clock, by the database: one pass over the period's proposals in the index on `sent_at`."""

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from pydantic import Field
from sqlalchemy import text
from sqlmodel.ext.asyncio.session import AsyncSession

from services.metrics.periods import InZone, Span, span_of
from services.metrics.rebuilding import RebuildBefore, said_partial
from services.metrics.schemas import Report
from shared.http import Viewer
from shared.times import AsSent

router = APIRouter(prefix="/v1")

# Each proposal sent is in one of answered, stale, open or replaced: unanswered, it is stale
# once its two weeks ran out before now (or before a newer proposal took its place), open while
# they run, replaced when a newer one took its place inside them.
_FIGURES = """
SELECT count(*) AS sent,
       count(*) FILTER (WHERE answered_at IS NOT NULL) AS answered,
       count(*) FILTER (WHERE answered_at >= stale_at) AS answered_late,
       count(*) FILTER (WHERE answered_at IS NULL AND stale_at <= :now
                          AND (replaced_at IS NULL OR replaced_at >= stale_at)) AS stale,
       count(*) FILTER (WHERE answered_at IS NULL AND replaced_at IS NULL AND stale_at > :now) AS open,
       count(*) FILTER (WHERE answered_at IS NULL AND replaced_at < stale_at) AS replaced,
       percentile_cont(0.5) WITHIN GROUP (ORDER BY extract(epoch FROM answered_at - sent_at))
           FILTER (WHERE answered_at IS NOT NULL) / 86400 AS median_days_to_answer
FROM proposal_facts
WHERE sent_at >= coalesce(CAST(:start AS timestamptz), '-infinity')
  AND sent_at < coalesce(CAST(:stop AS timestamptz), 'infinity')
"""


class ProposalReport(Report):
    now: datetime = Field(description="The moment stale and open were judged at.")
    sent: int = Field(description="Proposals sent in the period.")
    answered: int = Field(description="Of them, answered (by a later sales outcome or the person).")
    answered_late: int = Field(description="Of the answered, those answered after they went stale.")
    stale: int = Field(description="Unanswered when their time (LEADFLOW_PROPOSAL_STALE_DAYS, 14) ran out.")
    open: int = Field(description="Unanswered and still inside their time.")
    replaced: int = Field(description="Unanswered, a newer proposal took their place inside their time.")
    median_days_to_answer: float | None = Field(description="From sending to the answer, of the answered.")


SENT_FROM = "Proposals sent from (inclusive)."
SENT_BEFORE = "Sent before (exclusive); a date includes that day."


def sent_in(
    from_: Annotated[AsSent | None, Query(alias="from", description=SENT_FROM)] = None,
    to: Annotated[AsSent | None, Query(description=SENT_BEFORE)] = None,
    tz: InZone = None,
) -> Span:
    """The period the proposals were sent in, open at either end."""
    return span_of(from_, to, tz)


async def proposal_figures(
    session: AsyncSession, start: datetime | None, stop: datetime | None, now: datetime
) -> ProposalReport:
    """The figures of the proposals sent in [start, stop), stale or open as of `now`."""
    row: Any = (await session.execute(text(_FIGURES), {"start": start, "stop": stop, "now": now})).one()
    figures = dict(row._mapping)
    median = figures.pop("median_days_to_answer")
    return ProposalReport(
        now=now, median_days_to_answer=None if median is None else round(median, 2), **figures
    )


@router.get("/proposals", response_model=ProposalReport, dependencies=[Viewer])
async def proposals(
    request: Request, rebuild_before: RebuildBefore, span: Annotated[Span, Depends(sent_in)]
) -> ProposalReport:
    """Commercial proposals sent in the period: answered (and how many late), stale, still open
    and replaced by a newer one, which add up to those sent; and the median days to an answer."""
    async with request.app.state.runtime.db.transaction() as session:
        report = await proposal_figures(session, span.start, span.end, request.app.state.clock())
    return await said_partial(request, report, rebuild_before)
