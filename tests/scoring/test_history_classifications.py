"""Scoring marks what history makes of a lead: an input dated more than an hour before ingest
recorded it (an import's enquiry date, a CRM's backdated outcome) classifies the lead as usual,
counted by its dates, but as `history`, for no rep (no bell rung, no hand-off); a pass of time
over such a lead stays history; a live input is new interest again."""

import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
import yaml

from services.scoring import passes
from services.scoring.app import create_app
from services.scoring.backdating import is_history
from services.scoring.config import ScoringSettings
from services.scoring.rules import default_rules_text, parse_rules
from shared import topics
from shared.events import ACTIVITY_RECORDED, LEAD_UPDATED, OUTCOME_RECORDED, Envelope, for_a_rep
from shared.http import InvalidInput
from shared.kafka import Publisher
from tests.conftest import Servers, running
from tests.helpers import events_of, lead_captured

COOL_AFTER_DAYS = yaml.safe_load(default_rules_text())["temperature"]["cool_after_days"]


@pytest.fixture(scope="module")
async def scoring(servers: Servers) -> AsyncIterator[httpx.AsyncClient]:
    async with running(create_app(servers.settings(ScoringSettings))) as client:
        yield client


@pytest.fixture(scope="module")
async def publish(servers: Servers) -> AsyncIterator[Any]:
    publisher = Publisher(servers.bootstrap, "test")

    async def send(*events: Envelope) -> None:
        await publisher.publish([(topics.LEAD_EVENTS, str(e.lead_id).encode(), e.to_bytes()) for e in events])

    yield send
    await publisher.stop()


def outcome(lead: Envelope, kind: str, at: datetime) -> Envelope:
    """An `outcome.recorded` ingest records now, dated `at` by the CRM that posted it."""
    data = {"outcome_id": str(uuid.uuid4()), "outcome": kind, "occurred_at": at.isoformat()}
    return lead.follow_up(OUTCOME_RECORDED, "ingest", None).model_copy(update={"data": data})


async def classified(servers: Servers, lead_id: uuid.UUID, count: int) -> list[dict[str, Any]]:
    events = await events_of(
        servers.bootstrap, str(lead_id), until=lambda es: len(es) >= count, topic=topics.LEAD_CLASSIFICATIONS
    )
    return [e.data for e in events]


def is_for_a_rep(data: dict[str, Any]) -> bool:
    return for_a_rep(data["temperature"], data["stage"], data.get("history"))


async def test_an_imported_lead_accepted_by_sales_in_october_is_sql_but_for_no_rep(
    servers: Servers, scoring: httpx.AsyncClient, publish: Any
) -> None:
    enquired = datetime.now(UTC) - timedelta(days=65)
    imported = lead_captured(captured_at=enquired, channel="import")
    await publish(imported, outcome(imported, "sales_accepted", enquired + timedelta(days=2)))
    first, accepted = await classified(servers, imported.lead_id, 2)
    assert first.get("history") is True and not is_for_a_rep(first)
    assert (accepted["stage"], accepted["cause"], accepted.get("history")) == ("sql", OUTCOME_RECORDED, True)
    assert not is_for_a_rep(accepted), "an SQL from October is no request to call now"


async def test_a_live_lead_and_a_live_acceptance_are_new_interest(
    servers: Servers, scoring: httpx.AsyncClient, publish: Any
) -> None:
    live = lead_captured(timeframe="immediately")
    await publish(live)
    [hot] = await classified(servers, live.lead_id, 1)
    assert "history" not in hot and is_for_a_rep(hot)
    enquired = datetime.now(UTC) - timedelta(days=30)
    imported = lead_captured(captured_at=enquired, channel="import")
    accepted_now = outcome(imported, "sales_accepted", datetime.now(UTC) - timedelta(minutes=5))
    await publish(imported, accepted_now)
    _, accepted = await classified(servers, imported.lead_id, 2)
    assert accepted["stage"] == "sql" and "history" not in accepted and is_for_a_rep(accepted)


async def test_time_passing_over_a_backdated_hot_lead_keeps_it_history(
    servers: Servers, scoring: httpx.AsyncClient, publish: Any
) -> None:
    """An expo's "call me now", typed in two hours later: hot, as history; cooling by the review
    pass is no new interest either."""
    said = datetime.now(UTC) - timedelta(hours=2)
    expo = lead_captured(captured_at=said, channel="event", timeframe="immediately")
    await publish(expo)
    [hot] = await classified(servers, expo.lead_id, 1)
    assert (hot["temperature"], hot.get("history")) == ("hot", True) and not is_for_a_rep(hot)
    app = scoring._transport.app  # type: ignore[attr-defined]
    cools_at = said + timedelta(days=COOL_AFTER_DAYS["hot"], minutes=1)
    await passes.review_due(app.state.runtime.db, app.state.rulebook, now=cools_at)
    _, cooled = await classified(servers, expo.lead_id, 2)
    assert (cooled["cause"], cooled.get("history")) == ("decay", True)


async def test_a_known_persons_dated_update_is_history_said_when_they_said_it(
    servers: Servers, scoring: httpx.AsyncClient, publish: Any
) -> None:
    """A re-imported row of a known person, dated 20 days back: its "immediately" was said then
    (cooled past the 14 days a hot lead stays hot), not today, and it is history."""
    live = lead_captured(captured_at=datetime.now(UTC) - timedelta(days=30), channel="import")
    said = datetime.now(UTC) - timedelta(days=20)
    data = {"source_id": str(uuid.uuid4()), "channel": "import", "changes": {"timeframe": "immediately"}}
    updated = live.follow_up(LEAD_UPDATED, "ingest", None).model_copy(
        update={"data": {**data, "occurred_at": said.isoformat()}}
    )
    await publish(live, updated)
    first, second = await classified(servers, live.lead_id, 2)
    assert first.get("history") is True
    assert (second["temperature"], second.get("history")) == ("warm", True)


def test_how_old_an_input_may_be_and_still_be_new_is_in_the_rules() -> None:
    """An expo's leads typed in two hours late: history under the built-in hour; new interest
    for an operator whose offline sources come in later (`stages.history_after_minutes`)."""
    recorded = datetime(2026, 12, 7, 12, tzinfo=UTC)
    late = lead_captured(captured_at=recorded - timedelta(hours=2)).model_copy(
        update={"occurred_at": recorded}
    )
    document = yaml.safe_load(default_rules_text())
    built_in = parse_rules(document).stages.history_after_minutes
    assert built_in == 60 and is_history(late, built_in)
    assert not is_history(
        late,
        parse_rules(
            {**document, "stages": {**document["stages"], "history_after_minutes": 180}}
        ).stages.history_after_minutes,
    )
    del document["stages"]["history_after_minutes"]
    assert parse_rules(document).stages.history_after_minutes == 60, "a version stored before it"
    document["stages"]["history_after_minutes"] = -5
    with pytest.raises(InvalidInput) as refused:
        parse_rules(document)
    assert [field for field, _ in refused.value.errors] == ["stages.history_after_minutes"]


async def test_a_crm_sync_today_is_no_new_interest_but_the_person_writing_again_is(
    servers: Servers, scoring: httpx.AsyncClient, publish: Any
) -> None:
    """An October SQL: the CRM updating its job title today changes its score, not what it is
    (history); the person sending a form today is new interest, for a rep."""
    enquired = datetime.now(UTC) - timedelta(days=65)
    imported = lead_captured(captured_at=enquired, channel="import")
    synced = imported.follow_up(LEAD_UPDATED, "ingest", None).model_copy(
        update={"data": {"source_id": str(uuid.uuid4()), "channel": "api", "changes": {"job_title": "CEO"}}}
    )
    await publish(imported, outcome(imported, "sales_accepted", enquired + timedelta(days=2)), synced)
    *_, after_sync = await classified(servers, imported.lead_id, 3)
    assert (after_sync["stage"], after_sync["cause"], after_sync.get("history")) == (
        "sql",
        LEAD_UPDATED,
        True,
    )
    now = datetime.now(UTC).isoformat()
    form = {"activity_id": str(uuid.uuid4()), "activity_type": "form_submitted", "occurred_at": now}
    await publish(imported.follow_up(ACTIVITY_RECORDED, "ingest", None).model_copy(update={"data": form}))
    *_, wrote_again = await classified(servers, imported.lead_id, 4)
    assert wrote_again["cause"] == ACTIVITY_RECORDED and "history" not in wrote_again
    assert is_for_a_rep(wrote_again)
