"""Birthday and holiday greetings: a customer is greeted once a year on their birthday and on
each holiday of the playbooks' `occasions`, on the day in their time zone, through the touch
pipeline (consent, unsubscribe, erasure). Classifications and consent come through the real
broker; the tests run the greeting pass themselves at the times they name (past days: the
sender, on the wall clock, reaches each greeting after its day and cancels it), and nothing
races the wall clock."""

import uuid
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
import yaml
from sqlalchemy import text
from sqlalchemy.dialects import postgresql

from services.nurture.app import create_app
from services.nurture.config import NurtureSettings
from services.nurture.greetings import _candidates, _queue, candidates_query, greet_occasions
from services.nurture.occasions import greetings_due
from services.nurture.playbooks import default_playbooks_text, parse_playbooks, text_in
from shared import topics
from shared.events import CONSENT_CHANGED, LEAD_ERASED, ConsentChanged, Envelope, LeadErased, utcnow
from shared.kafka import Publisher
from shared.languages import fill
from tests.conftest import ADMIN, Servers, caught_up, eventually, running
from tests.helpers import lead_classified
from tests.nurture.holding import Mailbox, smtp_server

YAML = {**ADMIN, "content-type": "application/yaml"}
BAKU = "Asia/Baku"  # UTC+4 all year


def utc(text_: str) -> datetime:
    return datetime.fromisoformat(text_).replace(tzinfo=UTC)


def playbooks_document() -> dict[str, Any]:
    """The defaults, with the customer playbook's first touch a year away: the greetings are
    all a customer is sent here."""
    document = yaml.safe_load(default_playbooks_text())
    for playbook in document["playbooks"]:
        if playbook["name"] == "customer":
            playbook["steps"] = [{"after": "365d", "channel": "email", "template": "thanks"}]
    return dict(document)


@pytest.fixture(scope="module")
def mailbox() -> Iterator[Mailbox]:
    with smtp_server() as box:
        yield box


@pytest.fixture(scope="module")
async def nurture(servers: Servers, mailbox: Mailbox) -> AsyncIterator[httpx.AsyncClient]:
    settings = servers.settings(
        NurtureSettings,
        smtp_port=mailbox.port,
        touch_poll_seconds=0.05,
        occasion_check_every_seconds=3600,  # the app's own pass stays out of the tests' way
        sla_check_every_seconds=3600,
        proposal_check_every_seconds=3600,
    )
    async with running(create_app(settings)) as client:
        response = await client.put("/v1/playbooks", json=playbooks_document(), headers=ADMIN)
        assert response.status_code == 201, response.text
        yield client
        await client.put("/v1/playbooks", content=default_playbooks_text(), headers=YAML)


@pytest.fixture(scope="module")
async def publish(servers: Servers) -> AsyncIterator[Any]:
    publisher = Publisher(servers.bootstrap, "test")

    async def send(topic: str, *events: Envelope) -> None:
        await publisher.publish([(topic, str(e.lead_id).encode(), e.to_bytes()) for e in events])

    yield send
    await publisher.stop()


def app_state(client: httpx.AsyncClient) -> Any:
    return client._transport.app.state  # type: ignore[attr-defined]


async def greet(client: httpx.AsyncClient, now: str) -> int:
    state = app_state(client)
    return await greet_occasions(state.runtime.db, state.playbooks, utc(now))


async def customer(
    client: httpx.AsyncClient, publish: Any, stage: str = "customer", **lead: Any
) -> tuple[uuid.UUID, str]:
    """A lead scoring classified at `stage`, followed by nurture; its id and email."""
    event = lead_classified("cold")
    event.data["stage"] = stage
    email = f"{uuid.uuid4().hex[:10]}@example.kz"
    event.data["lead"] = {"email": email, "first_name": "Аружан", "timezone": BAKU, "consent": True, **lead}
    await publish(topics.LEAD_CLASSIFICATIONS, event)
    await eventually(lambda: followed(client, event.lead_id), timeout=20)
    return event.lead_id, email


async def followed(client: httpx.AsyncClient, lead_id: uuid.UUID) -> dict[str, Any] | None:
    async with app_state(client).runtime.db.transaction() as session:
        row = await session.execute(
            text("SELECT unsubscribed, context FROM followed_leads WHERE lead_id = :id"), {"id": lead_id}
        )
        found = row.first()
    return {"unsubscribed": found.unsubscribed, **found.context} if found and found.context else None


async def greetings(client: httpx.AsyncClient, lead_id: uuid.UUID, template: str) -> list[dict[str, Any]]:
    response = await client.get(f"/v1/leads/{lead_id}/touches", headers=ADMIN)
    assert response.status_code == 200, response.text
    return [t for t in response.json() if t["playbook"] == "occasions" and t["template"] == template]


async def greeted_on(client: httpx.AsyncClient, lead_id: uuid.UUID, occasion: str) -> list[str]:
    """The days (UTC) of the passes that queued this lead's greetings on `occasion`, by year."""
    async with app_state(client).runtime.db.transaction() as session:
        rows = await session.execute(
            text(
                "SELECT queued_at FROM occasion_greetings WHERE lead_id = :id AND occasion = :occasion"
                " ORDER BY year"
            ),
            {"id": lead_id, "occasion": occasion},
        )
        return [row.queued_at.astimezone(UTC).date().isoformat() for row in rows]


async def test_a_customer_is_greeted_once_on_the_birthday_and_again_next_year(
    nurture: httpx.AsyncClient, publish: Any, mailbox: Mailbox
) -> None:
    lead_id, email = await customer(nurture, publish, birthday="1990-06-15", language="ru")
    await greet(nurture, "2025-06-14T12:00")  # 16:00 in Baku, the day before
    assert await greetings(nurture, lead_id, "birthday") == []
    await greet(nurture, "2025-06-14T21:00")  # 01:00 on the 15th in Baku: due at 10:00 there
    [queued] = await greetings(nurture, lead_id, "birthday")
    assert datetime.fromisoformat(queued["due_at"]) == utc("2025-06-15T06:00")
    await greet(nurture, "2025-06-15T12:00")
    await greet(nurture, "2025-06-15T19:30")  # 23:30 in Baku
    assert len(await greetings(nurture, lead_id, "birthday")) == 1, "once on the day"
    await missed_its_day(nurture, lead_id, "birthday", mailbox, email)
    await greet(nurture, "2026-06-15T08:00")
    assert len(await greetings(nurture, lead_id, "birthday")) == 2, "again next year"


async def missed_its_day(
    client: httpx.AsyncClient, lead_id: uuid.UUID, template: str, mailbox: Mailbox, email: str
) -> None:
    """The greeting the pass queued on its day, in the past, is reached by the sender today:
    "happy birthday" a year late is none (it was sent, until a review found it)."""

    async def settled() -> list[dict[str, Any]] | None:
        found = await greetings(client, lead_id, template)
        return found if found and all(t["status"] not in ("scheduled", "sending") for t in found) else None

    [late] = await eventually(settled, timeout=20)
    assert (late["status"], late["detail"]) == ("cancelled", MISSED)
    assert mailbox.to(email) == []


MISSED = "a greeting that missed its day (the lead's hours or weekly cap)"


def test_the_greetings_are_written_in_the_customers_language() -> None:
    templates = parse_playbooks(playbooks_document()).templates
    for template, language, subject in [
        ("birthday", "ru", "С днём рождения, Аружан!"),
        ("new_year", "kk", "Жаңа жылыңыз құтты болсын, Аружан!"),
    ]:
        written = text_in(templates, template, language)
        assert written is not None and fill(written.subject, {"first_name": "Аружан"}) == subject


async def test_a_feb_29_birthday_is_greeted_on_feb_28_in_other_years(
    nurture: httpx.AsyncClient, publish: Any
) -> None:
    lead_id, _ = await customer(nurture, publish, stage="regular_customer", birthday="--02-29")
    await greet(nurture, "2024-02-28T08:00")  # a leap year: the day itself comes
    assert await greetings(nurture, lead_id, "birthday") == []
    await greet(nurture, "2024-02-29T08:00")
    await greet(nurture, "2025-02-28T08:00")
    await greet(nurture, "2025-03-01T08:00")
    # The passes that queued them, not the touches' due times: a touch whose lead the next
    # pass held as it was sent is put back for a second later by the wall clock's time.
    assert await greeted_on(nurture, lead_id, "birthday") == ["2024-02-29", "2025-02-28"]
    assert len(await greetings(nurture, lead_id, "birthday")) == 2


async def test_only_customers_are_greeted(nurture: httpx.AsyncClient, publish: Any) -> None:
    lead_id, _ = await customer(nurture, publish, stage="lead", birthday="1985-08-01")
    advocate, _ = await customer(nurture, publish, stage="advocate", birthday="1985-08-01")
    await greet(nurture, "2025-08-01T08:00")
    assert await greetings(nurture, lead_id, "birthday") == []
    assert len(await greetings(nurture, advocate, "birthday")) == 1


async def test_nobody_unsubscribed_or_without_consent_for_the_channel_is_greeted(
    nurture: httpx.AsyncClient, publish: Any, mailbox: Mailbox
) -> None:
    unsubscribed, _ = await customer(nurture, publish, birthday="1991-09-10")
    no_email, _ = await customer(nurture, publish, birthday="1991-09-10")
    consenting, _ = await customer(nurture, publish, birthday="1991-09-10")
    for lead_id, channel in [(unsubscribed, None), (no_email, "email")]:
        await withdraw(publish, lead_id, channel)
    await eventually(lambda: _unsubscribed(nurture, unsubscribed), timeout=20)
    await eventually(lambda: _email_withdrawn(nurture, no_email), timeout=20)
    await greet(nurture, "2025-09-10T08:00")
    assert await greetings(nurture, unsubscribed, "birthday") == []
    assert await greetings(nurture, no_email, "birthday") == []
    assert len(await greetings(nurture, consenting, "birthday")) == 1


async def test_a_greeting_queued_for_later_today_is_cancelled_by_an_unsubscribe(
    nurture: httpx.AsyncClient, publish: Any, mailbox: Mailbox
) -> None:
    soon = (utcnow() + timedelta(days=30)).date()  # a day to come: its greeting waits for 10:00
    lead_id, email = await customer(nurture, publish, birthday=f"1991-{soon:%m-%d}")
    await greet(nurture, f"{soon - timedelta(days=1)}T21:00")  # 01:00 that day in Baku
    [queued] = await greetings(nurture, lead_id, "birthday")
    assert queued["status"] == "scheduled"
    await withdraw(publish, lead_id, None)
    await eventually(lambda: _unsubscribed(nurture, lead_id), timeout=20)
    assert [t["status"] for t in await greetings(nurture, lead_id, "birthday")] == ["cancelled"]
    assert mailbox.to(email) == []


async def withdraw(publish: Any, lead_id: uuid.UUID, channel: str | None) -> None:
    """The person withdrew marketing consent: for one channel, or for all (unsubscribed)."""
    withdrawn = ConsentChanged(granted=False, purpose="marketing", channel=channel, occurred_at=utcnow())
    event = Envelope.of(CONSENT_CHANGED, lead_id, uuid.uuid4(), "ingest", withdrawn)
    await publish(topics.LEAD_EVENTS, event)


async def _unsubscribed(client: httpx.AsyncClient, lead_id: uuid.UUID) -> bool:
    return bool((await followed(client, lead_id) or {}).get("unsubscribed"))


async def _email_withdrawn(client: httpx.AsyncClient, lead_id: uuid.UUID) -> bool:
    return (await followed(client, lead_id) or {}).get("consent_channels", {}).get("email") is False


async def test_an_erased_customer_is_never_greeted_and_their_greetings_go(
    nurture: httpx.AsyncClient, publish: Any
) -> None:
    lead_id, _ = await customer(nurture, publish, birthday="1970-11-20")
    await greet(nurture, "2024-11-20T08:00")
    assert len(await greetings(nurture, lead_id, "birthday")) == 1
    erased = Envelope.of(LEAD_ERASED, lead_id, uuid.uuid4(), "ingest", LeadErased(erased_at=utcnow()))
    await publish(topics.LEAD_EVENTS, erased)
    await eventually(lambda: _gone(nurture, lead_id), timeout=20)
    await greet(nurture, "2025-11-20T08:00")
    assert await greetings(nurture, lead_id, "birthday") == []
    async with app_state(nurture).runtime.db.transaction() as session:
        kept = await session.execute(
            text("SELECT count(*) FROM occasion_greetings WHERE lead_id = :id"), {"id": lead_id}
        )
        assert kept.scalar_one() == 0


async def test_a_greeting_being_queued_as_the_customer_is_erased_is_erased_too(
    nurture: httpx.AsyncClient, publish: Any
) -> None:
    """The pass is queueing the customer's greeting when the erasure comes in: the erasure waits
    for it and then deletes the greeting and its touch (they stayed, with the birthday and time
    zone in them)."""
    lead_id, _ = await customer(nurture, publish, birthday="1971-11-21")
    state = app_state(nurture)
    now = utc("2024-11-21T08:00")
    async with state.runtime.db.transaction() as session:  # the pass, under way
        active = await state.playbooks.active(session)
        page = dict(await _candidates(session, active.value, now, None, 500))
        [birthday] = [
            g for g in greetings_due(active.value, page[lead_id], now) if g.occasion.name == "birthday"
        ]
        assert await _queue(session, lead_id, page[lead_id], birthday, active.version, now) == 1
        erased = Envelope.of(LEAD_ERASED, lead_id, uuid.uuid4(), "ingest", LeadErased(erased_at=utcnow()))
        await publish(topics.LEAD_EVENTS, erased)
        await eventually(lambda: _erasure_waiting(nurture), timeout=20)
    await caught_up(nurture._transport.app)  # type: ignore[attr-defined]
    async with state.runtime.db.transaction() as session:
        left = await session.execute(
            text(
                "SELECT (SELECT count(*) FROM touches WHERE lead_id = :id)"
                " + (SELECT count(*) FROM occasion_greetings WHERE lead_id = :id)"
            ),
            {"id": lead_id},
        )
        assert left.scalar_one() == 0


async def _erasure_waiting(client: httpx.AsyncClient) -> bool:
    async with app_state(client).runtime.db.transaction() as session:
        query = text(
            "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock'"
            " AND datname = current_database() AND pid <> pg_backend_pid()"
        )
        return bool((await session.execute(query)).scalar_one())


async def _gone(client: httpx.AsyncClient, lead_id: uuid.UUID) -> bool:
    response = await client.get(f"/v1/leads/{lead_id}/touches", headers=ADMIN)
    return response.status_code in (404, 410) or (response.status_code == 200 and response.json() == [])


async def test_a_holiday_greets_each_customer_once_a_year_on_their_own_day(
    nurture: httpx.AsyncClient, publish: Any, mailbox: Mailbox
) -> None:
    lead_id, email = await customer(nurture, publish, language="kk")
    await greet(nurture, "2024-12-31T19:00")  # 23:00 in Baku: still the old year
    assert await greetings(nurture, lead_id, "new_year") == []
    await greet(nurture, "2024-12-31T21:00")  # 01:00 on Jan 1 in Baku
    await greet(nurture, "2025-01-01T12:00")
    assert len(await greetings(nurture, lead_id, "new_year")) == 1
    await missed_its_day(nurture, lead_id, "new_year", mailbox, email)
    await greet(nurture, "2026-01-01T08:00")
    assert len(await greetings(nurture, lead_id, "new_year")) == 2


async def test_a_playbook_document_with_a_bad_occasion_is_refused_naming_it(
    nurture: httpx.AsyncClient,
) -> None:
    for occasion, field in [
        ({"name": "bad_day", "day": "02-30", "template": "thanks"}, "occasions.2.day"),
        ({"name": "no_text", "day": "03-22", "template": "nauryz"}, "document"),
        ({"name": "birthday", "day": "03-22", "template": "thanks"}, "document"),
        # YAML reads an unquoted 10:00 as 600 (base 60): taken, it was 00:10
        ({"name": "unquoted", "day": "03-22", "template": "thanks", "at": 600}, "occasions.2.at"),
        ({"name": "offset", "day": "03-22", "template": "thanks", "at": "10:00+03:00"}, "occasions.2.at"),
    ]:
        document = playbooks_document()
        document["occasions"].append(occasion)
        response = await nurture.put("/v1/playbooks", json=document, headers=ADMIN)
        assert response.status_code == 422, response.text
        [error] = response.json()["errors"]
        assert error["field"] == field, error
    active = (await nurture.get("/v1/playbooks", headers=ADMIN)).json()
    assert [o["name"] for o in active["playbooks"]["occasions"]] == ["birthday", "new_year"]


async def test_a_pass_on_a_holiday_reads_only_the_customers_not_yet_greeted_on_it(
    nurture: httpx.AsyncClient, publish: Any
) -> None:
    greeted, _ = await customer(nurture, publish, language="kk")
    await greet(nurture, "2025-01-01T12:00")
    assert len(await greetings(nurture, greeted, "new_year")) == 1
    newcomer, _ = await customer(nurture, publish, language="kk")
    read = await candidates(nurture, "2025-01-01T12:15")
    assert newcomer in read
    assert greeted not in read  # greeted: a pass every 15 minutes of the holiday reads it no more
    assert greeted in await candidates(nurture, "2026-01-01T12:00")  # next year's is not greeted


async def test_a_customer_greeted_on_a_holiday_is_still_read_for_a_birthday_that_day(
    nurture: httpx.AsyncClient, publish: Any
) -> None:
    lead_id, _ = await customer(nurture, publish, language="kk", birthday="1990-01-01")
    await greet(nurture, "2025-01-01T12:00")
    assert len(await greetings(nurture, lead_id, "new_year")) == 1
    assert len(await greetings(nurture, lead_id, "birthday")) == 1
    assert lead_id not in await candidates(nurture, "2025-01-01T12:15")
    async with app_state(nurture).runtime.db.transaction() as session:
        await session.execute(
            text("DELETE FROM occasion_greetings WHERE lead_id = :id AND occasion = 'birthday'"),
            {"id": lead_id},
        )
    assert lead_id in await candidates(nurture, "2025-01-01T12:15")


async def test_the_holiday_pass_can_walk_the_index_of_customers(nurture: httpx.AsyncClient) -> None:
    """PostgreSQL uses a partial index only for a query it can prove stays within the index's
    condition: with sequential scans ruled out, the plan names the index."""
    state = app_state(nurture)
    async with state.runtime.db.transaction() as session:
        playbooks = (await state.playbooks.active(session)).value
        query = candidates_query(playbooks, utc("2025-01-01T12:00"), None, 500)
        assert query is not None
        sql = query.compile(dialect=postgresql.dialect(), compile_kwargs={"literal_binds": True})
        await session.execute(text("SET LOCAL enable_seqscan = off"))
        plan = "\n".join(row[0] for row in await session.execute(text(f"EXPLAIN {sql}")))
    assert "followed_customers" in plan, plan


async def candidates(client: httpx.AsyncClient, now: str) -> list[uuid.UUID]:
    state = app_state(client)
    async with state.runtime.db.transaction() as session:
        playbooks = (await state.playbooks.active(session)).value
        return [lead_id for lead_id, _ in await _candidates(session, playbooks, utc(now), None, 100_000)]
