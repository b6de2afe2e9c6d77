"""Metrics HTTP routes: the funnel, spend, CAC, LTV and speed-to-lead (DOMAIN.md "Metrics")."""

from typing import Annotated, Any, Literal
from uuid import UUID

from fastapi import APIRouter, Depends, HTTPException, Query, Request, Response

from services.metrics import finance, funnel_maths, funnels, lifetime, ltv_maths, retention, speed, spend
from services.metrics.finance import Bucketing
from services.metrics.funnels import GroupBy
from services.metrics.models import FUNNEL_STAGES, Spend
from services.metrics.overflow import MAX_GROUPS
from services.metrics.periods import Span, acquired_in, captured_in, costs_in, days_begun_in
from services.metrics.rebuilding import (
    RebuildBefore,
    before_archive_refusal,
    leads_before_archive,
    reset_read_model,
    said_partial,
)
from services.metrics.schemas import (
    CacReport,
    Funnel,
    LtvReport,
    RetentionReport,
    SpeedReport,
    SpendIn,
    SpendPublic,
)
from shared import paging
from shared.http import Admin, Viewer

router = APIRouter(prefix="/v1")


@router.get("/funnel", response_model=Funnel, dependencies=[Viewer])
async def funnel(
    request: Request,
    rebuild_before: RebuildBefore,
    span: Annotated[Span, Depends(captured_in)],
    # sent empty (`channel=`) is a 422, as `from=` is: it counted the leads whose value is ''
    # (none), answering a funnel of 0 as if the filter applied
    channel: Annotated[str | None, Query(min_length=1, max_length=40)] = None,
    source: UUID | None = None,
    campaign: Annotated[str | None, Query(min_length=1, max_length=200)] = None,
    industry: Annotated[str | None, Query(min_length=1, max_length=200)] = None,
    segment: Annotated[
        str | None,
        Query(min_length=1, max_length=200, description="A customer group: the leads' company size."),
    ] = None,
    stages: Annotated[
        str | None,
        Query(
            min_length=1,
            description="Comma-separated, in order; default "
            + ",".join(FUNNEL_STAGES)
            + "; `suspect` first counts every lead captured (those who only looked around too)",
        ),
    ] = None,
    group_by: GroupBy | None = None,
    medians: Annotated[
        bool, Query(description="Also the median days in each stage (sorts every lead: slower).")
    ] = False,
    max_groups: Annotated[
        int,
        Query(
            ge=1,
            le=200,
            description="group_by campaign or industry: the largest groups shown, the rest as"
            " '(other)', overflow true.",
        ),
    ] = MAX_GROUPS,
) -> Funnel:
    """Leads per stage reached, stage-to-stage and overall conversion, drop-off, leads by
    current stage and temperature, and with `medians=true` the median days in each stage;
    with `group_by`, one funnel per channel (or source, campaign, industry), side by side;
    campaigns and industries, which leads bring with any value, as the `max_groups` largest
    and one `(other)` for the rest.

    A lead counts as having reached every stage up to the furthest it got to, so one that
    skipped stages (word of mouth, 000:121) counts as having passed them. The counts come
    from one pass over the leads, grouped by (group, furthest stage, stage, temperature)."""
    chosen = funnel_maths.parse_stages(stages)
    scope = funnels.Scope(span.start, span.end, channel, source, campaign, industry, segment)
    async with request.app.state.runtime.db.transaction() as session:
        report = await funnels.report(session, chosen, scope, group_by, medians, max_groups)
    return await said_partial(request, report, rebuild_before)


@router.post("/spend", status_code=201, response_model=SpendPublic, dependencies=[Admin])
async def add_spend(request: Request, data: SpendIn) -> Spend:
    """Record money spent in a period (marketing or sales; per channel, campaign or stage)."""
    async with request.app.state.runtime.db.transaction() as session:
        return await spend.add(session, data)


@router.put("/spend/{spend_id}", response_model=SpendPublic, dependencies=[Admin])
async def correct_spend(request: Request, spend_id: UUID, data: SpendIn) -> Spend:
    """Correct an entry (the whole entry is replaced)."""
    async with request.app.state.runtime.db.transaction() as session:
        return await spend.correct(session, spend_id, data)


@router.delete("/spend/{spend_id}", status_code=204, dependencies=[Admin])
async def delete_spend(request: Request, spend_id: UUID) -> None:
    async with request.app.state.runtime.db.transaction() as session:
        await spend.delete(session, spend_id)


@router.get("/spend", response_model=list[SpendPublic], dependencies=[Viewer])
async def list_spend(
    request: Request, response: Response, limit: paging.Limit = 500, cursor: paging.Cursor = None
) -> list[Spend]:
    """Spend entries by period start, a page at a time; while more follow, the answer carries
    `Link: <…>; rel="next"` (RFC 8288) with the cursor of the next page."""
    async with request.app.state.runtime.db.transaction() as session:
        entries = await spend.page(session, cursor, limit)
    return paging.page(entries, limit, request, response, spend.page_key)


@router.get("/cac", response_model=CacReport, dependencies=[Viewer])
async def cac(
    request: Request,
    rebuild_before: RebuildBefore,
    span: Annotated[Span, Depends(costs_in)],
    group_by: Literal["channel", "campaign"] | None = None,
    period: Bucketing = "month",
    margin: Annotated[float | None, Query(gt=0, le=1, allow_inf_nan=False)] = None,
    max_groups: Annotated[
        int,
        Query(
            ge=1,
            le=200,
            description="group_by campaign: the campaigns with the most customers shown (and every"
            " campaign spend was entered for), the rest as '(other)', overflow true.",
        ),
    ] = MAX_GROUPS,
) -> CacReport:
    """CAC = all marketing and sales costs in a period ÷ customers acquired in it (000:92),
    by month or quarter, overall and per channel or campaign; the CAC ratio (gross profit ÷
    acquisition cost, 000:97), the payback period, and warnings outside the configured band.
    Customers count to the instant; spend, entered by whole days, counts for each day that starts
    in the period (its midnight in `tz`), so a period ending 23:59:59 holds its last day's spend
    and two periods that meet count no day twice. The months or quarters are those of `tz`."""
    start, end = span.closed()
    settings = request.app.state.settings
    async with request.app.state.runtime.db.transaction() as session:
        entries = await spend.overlapping(session, *days_begun_in(start, end, span.zone))
        campaigns = (
            {entry.campaign for entry in entries if entry.campaign} if group_by == "campaign" else set()
        )
        currency = await spend.report_currency(session, settings.currency)
        acquired, foreign = await lifetime.customers_acquired(
            session,
            start,
            end,
            period,
            group_by,
            max_groups,
            campaigns,
            zone=span.zone.key,
            currency=currency,
        )
    margin = margin or settings.margin
    report = finance.cac_report(
        entries,
        acquired,
        start,
        end,
        group_by,
        period,
        margin,
        settings,
        zone=span.zone,
        currency=currency,
        foreign=foreign,
    )
    return await said_partial(request, report, rebuild_before)


@router.get("/ltv", response_model=LtvReport, dependencies=[Viewer])
async def ltv(
    request: Request,
    rebuild_before: RebuildBefore,
    group_by: Literal["channel", "segment"] | None = None,
    margin: Annotated[float | None, Query(gt=0, le=1, allow_inf_nan=False)] = None,
) -> LtvReport:
    """LTV = S x C x P x t (001:323-331): average check x purchases per month x margin x
    average months of cooperation, as revenue and as margin, overall and per channel or
    segment, beside CAC."""
    settings = request.app.state.settings
    async with request.app.state.runtime.db.transaction() as session:
        currency = await spend.report_currency(session, settings.currency)
        overall, groups = await lifetime.customer_totals(session, group_by, currency)
        bought = await lifetime.bought_in_other_currencies(session, group_by, currency)
        now = request.app.state.clock()
        entries = await spend.begun_by(session, now)
        acquired = await spend.acquired_by_month(session, now)
    everyone, per_channel = ltv_maths.cac_to_date(entries, acquired, now, group_by == "channel", currency)
    elsewhere = ltv_maths.other_currencies(entries, bought, now, group_by, currency)
    margin = margin or settings.margin
    report = ltv_maths.ltv_report(groups, overall, margin, everyone, per_channel, currency, elsewhere)
    return await said_partial(request, report, rebuild_before)


@router.get("/retention", response_model=RetentionReport, dependencies=[Viewer])
async def retention_of_customers(
    request: Request, rebuild_before: RebuildBefore, span: Annotated[Span, Depends(acquired_in)]
) -> RetentionReport:
    """Retention and returning customers: the customers acquired in the period, by the month they
    became customers (in `tz`), how many bought more than once and how many are churned now."""
    start, end = span.closed()
    async with request.app.state.runtime.db.transaction() as session:
        counted = await retention.cohorts(session, start, end, span.zone.key)
    return await said_partial(request, retention.retention_report(counted), rebuild_before)


@router.get("/speed-to-lead", response_model=SpeedReport, dependencies=[Viewer])
async def speed_to_lead(
    request: Request,
    rebuild_before: RebuildBefore,
    span: Annotated[Span, Depends(captured_in)],
    group_by: Literal["channel", "rep"] | None = None,
) -> SpeedReport:
    """Capture → first rep webhook and capture → acknowledgement, p50 / p90 / p99 in seconds,
    SLA compliance (of the hand-offs whose SLA is over), touches to conversion and sales-cycle
    days. The percentiles are read off
    histograms kept per month (each within 1% of the exact value); counts, SLA compliance and
    touches are exact."""
    settings = request.app.state.settings
    async with request.app.state.runtime.db.transaction() as session:
        report = await speed.speed_report(
            session, span.start, span.end, group_by, settings.sla_seconds, request.app.state.clock()
        )
    return await said_partial(request, report, rebuild_before)


@router.get("/health", dependencies=[Viewer])
async def pipeline_health(request: Request) -> dict[str, Any]:
    """Consumer lag per service and topic, DLQ sizes, outbox backlogs, webhook failures in the
    last hour, capture → rep webhook latency over the last day (also on /metrics)."""
    report: dict[str, Any] = await request.app.state.health.check()
    return report


@router.post("/rebuild", status_code=202, dependencies=[Admin], responses={409: {}})
async def rebuild(
    request: Request,
    drop_unarchived: Annotated[
        bool, Query(description="Rebuild even if leads counted before the archive existed are lost.")
    ] = False,
) -> dict[str, Any]:
    """Drop the read model and rebuild it from metrics' own archive of every event it folded
    (nothing from the broker, so it gives the same numbers after any restart and beyond any
    Kafka retention). Spend entries are input, not read model: they stay. Events arriving
    meanwhile are applied as usual; follow the progress with `GET /v1/rebuild`. A 409 while
    leads counted before the archive existed (an upgraded older Leadflow) would be lost."""
    if not drop_unarchived:
        async with request.app.state.runtime.db.transaction() as session:
            if unarchived := await leads_before_archive(session):
                raise HTTPException(409, before_archive_refusal(unarchived))
    (runner,) = request.app.state.runtime.consumers
    total = await runner.request_replay(reset_read_model)
    return {"status": "replaying", "events": total}


@router.get("/rebuild", dependencies=[Admin])
async def rebuild_progress(request: Request) -> dict[str, Any]:
    """Whether a rebuild is under way, and how far it got."""
    (runner,) = request.app.state.runtime.consumers
    progress = await runner.archive.progress()
    return {
        "status": "replaying" if progress.replaying else "idle",
        "done": progress.done,
        "events": progress.total,
    }
