"""Scoring's main write path (the consumer's handler, one transaction per event) against the
real database, for any lead and any order of its events: it never fails, the stored
classification is bounded and explained, and every stored change is published once."""

import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import text

from services.scoring.handlers import event_handlers
from services.scoring.lifecycle import STAGES
from services.scoring.rulebook import RuleBook
from shared.db import Database
from shared.events import Envelope
from tests.conftest import Servers
from tests.scoring.factories import RULES, activity, captured, outcome, updated

OUTCOMES = ["sales_accepted", "sales_rejected", "meeting_booked", "proposal_sent", "won", "lost", "churned"]
# What ingest can publish: any text PostgreSQL can store (it refuses the rest at the door).
words = st.text(st.characters(exclude_categories=("Cs",), exclude_characters="\x00"), max_size=30)
attributes = st.fixed_dictionaries(
    {},
    optional={
        "timeframe": st.one_of(st.sampled_from(["now", "2 weeks", "about two months", "6 months"]), words),
        "job_title": st.one_of(st.sampled_from(["CEO", "Директор", "intern"]), words),
        "company_size": st.one_of(st.integers(-10, 10_000), words),
        "budget": st.one_of(st.floats(allow_nan=False, allow_infinity=False), st.integers(), words),
        "is_decision_maker": st.one_of(st.booleans(), words),
        "message": words,
        "country": st.sampled_from(["KZ", "AZ", "US", ""]),
        "email": st.sampled_from(["a@qazaq.kz", "b@mailinator.com"]),
    },
)
later_events = st.lists(
    st.one_of(
        st.builds(activity, st.sampled_from(sorted(RULES.engagement.activities)), st.floats(0, 400)),
        st.builds(outcome, st.sampled_from(OUTCOMES), st.floats(0, 400), amount=st.floats(1, 1e6)),
        st.builds(lambda changes: updated(0, **changes), attributes),
    ),
    max_size=8,
)


@pytest.fixture(scope="module")
async def db(servers: Servers) -> AsyncIterator[Database]:
    database = Database(servers.database_url, "scoring")
    yield database
    await database.dispose()


async def stored(db: Database, lead_id: uuid.UUID) -> tuple[Any, int, list[dict[str, Any]]]:
    async with db.transaction() as session:
        row = (
            await session.execute(text("SELECT * FROM lead_scores WHERE lead_id = :id"), {"id": lead_id})
        ).first()
        changes = (
            await session.execute(
                text(
                    "SELECT count(*) FROM classification_history WHERE lead_id = :id"
                    " AND (note IS NULL OR note NOT LIKE 'refused:%')"  # a refused move is not a change
                ),
                {"id": lead_id},
            )
        ).scalar_one()
        published = await session.execute(
            text("SELECT value FROM outbox WHERE key = :key ORDER BY id"), {"key": str(lead_id).encode()}
        )
    return row, changes, [Envelope.from_bytes(value).data for (value,) in published]


@settings(max_examples=60, deadline=None, derandomize=True, suppress_health_check=list(HealthCheck))
@given(
    fields=attributes,
    more=later_events,
    capture_at=st.integers(0, 8),
    channel=st.sampled_from(["web_form", "import", "one_click_order"]),
)
async def test_any_lead_in_any_order_is_stored_bounded_explained_and_published(
    db: Database, fields: dict[str, Any], more: list[Envelope], capture_at: int, channel: str
) -> None:
    lead_id = uuid.uuid4()
    events = [e.model_copy(update={"lead_id": lead_id, "id": uuid.uuid4()}) for e in more]
    first = captured(1, channel, **fields).model_copy(update={"lead_id": lead_id})
    events.insert(min(capture_at, len(events)), first)  # the capture may come after other events
    handlers = event_handlers(RuleBook())
    for event in events:
        async with db.transaction() as session:
            await handlers[event.type](session, [event])

    row, changes, published = await stored(db, lead_id)
    assert row is not None
    assert 0 <= row.score <= 100
    assert sum(hit["points"] for hit in row.breakdown) == row.score
    assert row.temperature in ("hot", "warm", "cold") and row.stage in STAGES
    assert len(published) == changes >= 1, "each stored change is published once"
    last = published[-1]
    assert (last["score"], last["temperature"], last["stage"]) == (row.score, row.temperature, row.stage)
