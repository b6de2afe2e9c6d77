"""Scoring's consumer: every event on `ingest.lead-events` is folded into its lead's profile,
the lead is decided again, and each change is stored and published. A run of events is
handled in one go: the leads are loaded once, locked, and written once."""

from datetime import UTC, datetime
from uuid import UUID

from prometheus_client import Counter
from sqlmodel.ext.asyncio.session import AsyncSession

from services.scoring import standings
from services.scoring.classification_batches import Batch
from services.scoring.classify import Decision
from services.scoring.profile import SUBMISSIONS, fold, outcome_of
from services.scoring.rulebook import RuleBook
from services.scoring.standings import Standing
from services.scoring.timeframes import LANGUAGES
from shared.consumer import Handler
from shared.events import (
    ACTIVITY_RECORDED,
    CONSENT_CHANGED,
    LEAD_CAPTURED,
    LEAD_ERASED,
    LEAD_UPDATED,
    OUTCOME_RECORDED,
    Envelope,
)
from shared.observability import Telemetry
from shared.sealing import SecretBox

SCORED_TYPES = (LEAD_CAPTURED, LEAD_UPDATED, ACTIVITY_RECORDED, OUTCOME_RECORDED, CONSENT_CHANGED)


NOT_UNDERSTOOD = "intent.timeframe.not_understood"
# What nurture acts on besides the classification: a change to one is told with the lead's
# classification even when it stays the same (a birthday given after the purchase was never
# greeted: nurture learns the person from `lead.classified` alone).
RETOLD_DETAILS = frozenset({"birthday", "timezone", "language", "preferred_channel", "call_window"})


def _retold(event: Envelope) -> bool:
    return event.type == LEAD_UPDATED and not RETOLD_DETAILS.isdisjoint(event.data.get("changes") or {})


def _states_timeframe(event: Envelope) -> bool:
    data = event.data.get("changes", event.data) if event.type == LEAD_UPDATED else event.data
    if event.type == ACTIVITY_RECORDED:  # a known person's repeat says its own (`profile.SUBMISSIONS`)
        submitted = data.get("activity_type") in SUBMISSIONS
        return submitted and "timeframe" in (data.get("properties") or {})
    return event.type in (LEAD_CAPTURED, LEAD_UPDATED) and "timeframe" in data


def language_label(language: object) -> str:
    """A lead's language as a metric's label: one the timeframes are read in, `-` for none,
    `other` for the rest (a free-text field: each new value a series kept for good)."""
    if not language:
        return "-"
    code = str(language).lower()[:2]
    return code if code in LANGUAGES else "other"


def _not_understood(decision: Decision) -> bool:
    return any(hit.rule == NOT_UNDERSTOOD for hit in decision.evaluation.breakdown)


async def apply_events(
    session: AsyncSession,
    events: list[Envelope],
    book: RuleBook,
    not_understood: Counter | None = None,
    ring_box: SecretBox | None = None,
) -> Batch:
    """Fold the events, in order, into their leads and decide each lead after each event.
    A lead not seen before starts from an empty profile, whatever the event: nothing is
    dropped when an activity arrives before the capture."""
    known = await standings.load(session, {event.lead_id for event in events})
    batch = Batch(await book.active(session, at_least=standings.newest_rules(known)), ring_box)
    erased: set[UUID] = set()
    now = datetime.now(UTC)
    for event in events:
        if event.type == LEAD_ERASED:
            known.pop(event.lead_id, None)
            batch.rows.pop(event.lead_id, None)
            erased.add(event.lead_id)
            continue
        standing = known.get(event.lead_id)
        if standing is None:  # built only when missing: a new profile costs a model's validation
            standing = known[event.lead_id] = Standing(event.lead_id)
        erased.discard(event.lead_id)
        fold(standing.profile, event)
        decision = batch.apply(session, standing, now, event, outcome_of(event), retell=_retold(event))
        if not_understood is not None and _states_timeframe(event) and _not_understood(decision):
            not_understood.labels(language_label(standing.profile.attributes.get("language"))).inc()
    if erased:
        await standings.forget(session, erased)
        batch.history = [row for row in batch.history if row["lead_id"] not in erased]
    batch.save(session)
    return batch


def event_handlers(
    book: RuleBook, telemetry: Telemetry | None = None, ring_box: SecretBox | None = None
) -> dict[str, Handler]:
    """The handler of each event type this service consumes (one for all: order matters).
    `ring_box`: seals a hot lead's key for the ring that hands it over (`shared.personal`)."""
    not_understood = None
    if telemetry is not None:
        not_understood = Counter(
            "leadflow_timeframes_not_understood_total",
            "Timeframes stated on a lead that the rules' vocabulary and dateparser did not understand "
            "(the lead shows a 0-point line naming the text), by the lead's language.",
            ["language"],
            registry=telemetry.registry,
        )

    async def handle(session: AsyncSession, events: list[Envelope]) -> None:
        await apply_events(session, events, book, not_understood, ring_box)

    return {event_type: handle for event_type in (*SCORED_TYPES, LEAD_ERASED)}
