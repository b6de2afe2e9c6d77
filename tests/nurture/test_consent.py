"""Follow-up writes only to people who may be written to: anyone could type someone else's
address into a form, so a marketing email, SMS or messenger text needs the person's consent
for that channel, or a legal basis their source states. Tried as that attacker would: a lead
with a stranger's address and no consent gets nothing."""

import json
from collections.abc import AsyncIterator, Iterator
from typing import Any

import asyncpg
import httpx
import pytest
import yaml

from services.nurture.app import create_app
from services.nurture.config import NurtureSettings
from services.nurture.consent import may_market, with_consent, withdrawn_everywhere
from services.nurture.playbooks import default_playbooks_text
from services.nurture.touch_claims import NO_CONSENT
from shared import topics
from shared.events import CONSENT_CHANGED, Envelope
from shared.kafka import Publisher
from tests.conftest import ADMIN, Servers, eventually, running
from tests.nurture.holding import Mailbox, smtp_server
from tests.nurture.test_followup import _payload, classified, touches
from tests.receiver import Receiver, webhook_receiver

LATER = {
    "name": "later",
    "when": {"channel": ["consent-later"]},
    "steps": [
        {"after": "0m", "channel": "email", "template": "content"},
        {"after": "1d", "channel": "sms", "template": "checking_in"},
    ],
}
BOTH = {
    "name": "both",
    "when": {"channel": ["consent-test"]},
    "steps": [
        {"after": "0m", "channel": "email", "template": "content"},
        {"after": "0m", "channel": "sms", "template": "checking_in"},
    ],
}


def test_who_may_be_written_to() -> None:
    assert not may_market("email", {}), "no consent, no basis: nothing"
    assert not may_market("email", {"consent": None}) and not may_market("sms", {"consent": False})
    assert may_market("email", {"consent": True}) and may_market(
        "messenger", {"marketing_basis": "customers"}
    )
    assert may_market("call", {}), "a call task goes to a rep, who decides"
    withdrawn_sms = with_consent(
        {"consent": True}, {"granted": False, "purpose": "marketing", "channel": "sms"}
    )
    assert may_market("email", withdrawn_sms) and not may_market("sms", withdrawn_sms)
    only_sms = with_consent({}, {"granted": True, "purpose": "marketing", "channel": "sms"})
    assert may_market("sms", only_sms) and not may_market("email", only_sms)
    assert with_consent({"consent": True}, {"granted": False, "purpose": "analytics"}) == {"consent": True}
    assert withdrawn_everywhere({"granted": False, "purpose": "marketing"})
    assert not withdrawn_everywhere({"granted": False, "purpose": "marketing", "channel": "sms"})


@pytest.fixture(scope="module")
def mailbox() -> Iterator[Mailbox]:
    with smtp_server() as box:
        yield box


@pytest.fixture(scope="module")
def sms() -> Iterator[Receiver]:
    with webhook_receiver() as receiver:
        yield receiver


@pytest.fixture(scope="module")
async def nurture(servers: Servers, mailbox: Mailbox, sms: Receiver) -> AsyncIterator[httpx.AsyncClient]:
    settings = servers.settings(
        NurtureSettings,
        smtp_port=mailbox.port,
        sms_url=sms.url,
        touch_poll_seconds=0.05,
        touch_lease_seconds=7,
        webhook_timeout_seconds=3,
    )
    async with running(create_app(settings)) as client:
        playbooks = yaml.safe_load(default_playbooks_text())
        playbooks["playbooks"][:0] = [BOTH, LATER]
        assert (await client.put("/v1/playbooks", json=playbooks, headers=ADMIN)).status_code == 201
        yield client


@pytest.fixture(scope="module")
async def publish(servers: Servers) -> AsyncIterator[Any]:
    publisher = Publisher(servers.bootstrap, "test")

    async def send(topic: str, *events: Envelope) -> None:
        await publisher.publish([(topic, str(e.lead_id).encode(), e.to_bytes()) for e in events])

    yield send
    await publisher.stop()


async def settled(client: httpx.AsyncClient, event: Envelope) -> dict[str, dict[str, Any]] | None:
    timeline = {t["channel"]: t for t in await touches(client, event.lead_id)}
    done = len(timeline) == 2 and all(
        t["status"] in ("sent", "cancelled", "failed") for t in timeline.values()
    )
    return timeline if done else None


def texted(sms: Receiver, phone: str) -> bool:
    return any(f'"{phone}"'.encode() in r.body for r in sms.received())


async def test_a_stranger_typed_into_a_form_gets_nothing(
    nurture: httpx.AsyncClient, mailbox: Mailbox, sms: Receiver, publish: Any
) -> None:
    event = classified("warm", channel="consent-test", phone="+77010000001", consent=None)
    await publish(topics.LEAD_CLASSIFICATIONS, event)
    timeline = await eventually(lambda: settled(nurture, event), timeout=30)
    for channel in ("email", "sms"):
        assert timeline[channel]["status"] == "cancelled", timeline
        assert timeline[channel]["detail"] == NO_CONSENT.format(channel=channel)
    assert mailbox.to(event.data["lead"]["email"]) == [] and not texted(sms, "+77010000001")


async def test_the_sources_legal_basis_stands_in_for_consent(
    nurture: httpx.AsyncClient, mailbox: Mailbox, sms: Receiver, publish: Any
) -> None:
    basis = "legitimate interest: customers of our shop"
    event = classified(
        "warm", channel="consent-test", phone="+77010000002", consent=None, marketing_basis=basis
    )
    await publish(topics.LEAD_CLASSIFICATIONS, event)
    timeline = await eventually(lambda: settled(nurture, event), timeout=30)
    assert {c: t["status"] for c, t in timeline.items()} == {"email": "sent", "sms": "sent"}, timeline
    assert len(mailbox.to(event.data["lead"]["email"])) == 1 and texted(sms, "+77010000002")


async def test_consent_withdrawn_for_sms_stops_texts_and_not_emails(
    nurture: httpx.AsyncClient, mailbox: Mailbox, sms: Receiver, publish: Any, servers: Servers
) -> None:
    """The withdrawal (`POST /v1/consent` on ingest, with a channel) reaches nurture while the
    SMS is still planned; when it falls due it is not sent, and the email still goes."""
    event = classified("warm", channel="consent-later", phone="+77010000003", consent=True)
    await publish(topics.LEAD_CLASSIFICATIONS, event)
    await eventually(lambda: _statuses_are(nurture, event, {"email": "sent", "sms": "scheduled"}), timeout=30)
    withdrawn = event.follow_up(
        CONSENT_CHANGED, "ingest", _payload(granted=False, purpose="marketing", channel="sms")
    )
    await publish(topics.LEAD_EVENTS, withdrawn)
    connection = await asyncpg.connect(servers.database_url.replace("+asyncpg", ""))
    try:

        async def recorded() -> bool:
            query = "SELECT context FROM nurture.followed_leads WHERE lead_id = $1"
            context = json.loads(await connection.fetchval(query, event.lead_id))
            return context.get("consent_channels") == {"sms": False}

        await eventually(recorded, timeout=30)
        # the SMS falls due now rather than tomorrow
        await connection.execute(
            "UPDATE nurture.touches SET due_at = now() WHERE lead_id = $1", event.lead_id
        )
    finally:
        await connection.close()
    timeline = await eventually(lambda: settled(nurture, event), timeout=30)
    assert {c: t["status"] for c, t in timeline.items()} == {"email": "sent", "sms": "cancelled"}, timeline
    assert timeline["sms"]["detail"] == NO_CONSENT.format(channel="sms")
    assert not texted(sms, "+77010000003") and len(mailbox.to(event.data["lead"]["email"])) == 1


async def _statuses_are(client: httpx.AsyncClient, event: Envelope, wanted: dict[str, str]) -> bool:
    return {t["channel"]: t["status"] for t in await touches(client, event.lead_id)} == wanted


async def test_a_channel_withdrawn_before_the_first_classification_stays_withdrawn(
    nurture: httpx.AsyncClient, mailbox: Mailbox, sms: Receiver, publish: Any, servers: Servers
) -> None:
    """`consent.changed` comes straight from ingest; scoring's classification of the lead may
    come after it, made before scoring had heard of the withdrawal."""
    event = classified("warm", channel="consent-test", phone="+77010000004", consent=True)
    withdrawn = event.follow_up(
        CONSENT_CHANGED, "ingest", _payload(granted=False, purpose="marketing", channel="sms")
    )
    await publish(topics.LEAD_EVENTS, withdrawn)
    await _applied(servers, withdrawn)
    await publish(topics.LEAD_CLASSIFICATIONS, event)
    timeline = await eventually(lambda: settled(nurture, event), timeout=30)
    assert {c: t["status"] for c, t in timeline.items()} == {"email": "sent", "sms": "cancelled"}, timeline
    assert not texted(sms, "+77010000004")


async def test_a_classification_made_before_a_withdrawal_does_not_undo_it(
    nurture: httpx.AsyncClient, mailbox: Mailbox, sms: Receiver, publish: Any, servers: Servers
) -> None:
    event = classified("warm", channel="consent-later", phone="+77010000005", consent=True)
    await publish(topics.LEAD_CLASSIFICATIONS, event)
    await eventually(lambda: _statuses_are(nurture, event, {"email": "sent", "sms": "scheduled"}), timeout=30)
    withdrawn = event.follow_up(
        CONSENT_CHANGED, "ingest", _payload(granted=False, purpose="marketing", channel="sms")
    )
    await publish(topics.LEAD_EVENTS, withdrawn)
    await _applied(servers, withdrawn)
    stale = classified("warm", event.lead_id, **event.data["lead"])  # scoring's copy, made before
    await publish(topics.LEAD_CLASSIFICATIONS, stale)
    await _applied(servers, stale)
    connection = await asyncpg.connect(servers.database_url.replace("+asyncpg", ""))
    try:  # the SMS falls due now rather than tomorrow
        due_now = "UPDATE nurture.touches SET due_at = now() WHERE lead_id = $1"
        await connection.execute(due_now, event.lead_id)
    finally:
        await connection.close()
    timeline = await eventually(lambda: settled(nurture, event), timeout=30)
    assert {c: t["status"] for c, t in timeline.items()} == {"email": "sent", "sms": "cancelled"}, timeline
    assert not texted(sms, "+77010000005")


async def _applied(servers: Servers, event: Envelope) -> None:
    """Wait until nurture's consumer has applied the event (its inbox has it)."""
    connection = await asyncpg.connect(servers.database_url.replace("+asyncpg", ""))
    try:
        query = "SELECT count(*) FROM nurture.processed_events WHERE event_id = $1"
        await eventually(lambda: _counted(connection, query, event.id), timeout=30)
    finally:
        await connection.close()


async def _counted(connection: asyncpg.Connection, query: str, *args: Any) -> bool:
    return bool(await connection.fetchval(query, *args))
