"""A `lead.classified` is published with its payload encoded straight into the envelope
(`Envelope.to_bytes_with`), not through a dict and the envelope's validation again: byte for
byte the event `Envelope.of` builds from the same payload, sealed or not."""

import random
import uuid
from collections.abc import AsyncIterator
from datetime import datetime
from typing import Any

import pytest
from pydantic import TypeAdapter
from sqlalchemy import text

from services.scoring.classification_batches import Batch
from services.scoring.classify import Decision, classification
from services.scoring.profile import fold, outcome_of
from services.scoring.standings import Standing
from shared.db import Database
from shared.documents import Active
from shared.events import LEAD_CLASSIFIED, Envelope, LeadClassified, Payload
from shared.outbox import MAX_EVENT_BYTES, EventTooLarge, add_to_outbox
from shared.personal import new_key, opened, seal_data
from tests.conftest import Servers
from tests.scoring.factories import NOW, RULES, activity, captured, outcome, updated
from tests.scoring.language_corpus import ROWS

DATA = TypeAdapter(dict[str, Any])


def varied_leads(count: int, seed: int = 5) -> list[list[Envelope]]:
    """Leads whose classifications carry every kind of field: the corpus's words in every
    language (asks quoted in the breakdown, timeframes nobody understood), numbers as text,
    floats, custom fields nested, a repeat submission's words (`said`), outcomes with reasons."""
    rng = random.Random(seed)
    leads = []
    for i in range(count):
        row = ROWS[i % len(ROWS)]
        lead = uuid.UUID(int=rng.getrandbits(128))
        fields = {
            "language": row.language,
            "timeframe": row.timeframe,
            "message": row.message or None,
            "job_title": rng.choice(["CEO", "Директор", "intern", None]),
            "company_size": rng.choice(["11-50", "1,000+", 60, None]),
            "budget": rng.choice([5000, 1234.5, "10 000", None]),
            "email": rng.choice(["a@qazaq.kz", "b@mailinator.com"]),
            "custom": rng.choice([None, {"note": "«ёлка» ə", "n": [1, 2.5, True, None]}]),
        }
        events = [captured(rng.uniform(0, 60), rng.choice(["web_form", "one_click_order"]), **fields)]
        for _ in range(rng.randint(0, 4)):
            kind = rng.choice(["page_view", "email_click", "chat_message", "form_submitted", "note"])
            said = {"text": rng.choice(ROWS).message or "ok", "timeframe": rng.choice([None, "завтра"])}
            events.append(activity(kind, rng.uniform(0, 60), **said))
        if rng.random() < 0.3:
            events.append(updated(rng.uniform(0, 10), need="CRM", birthday="1990-01-01"))
        if rng.random() < 0.3:
            events.append(
                outcome(rng.choice(["sales_accepted", "lost"]), rng.uniform(0, 10), reason="бартер?")
            )
        leads.append([e.model_copy(update={"lead_id": lead}) for e in events])
    return leads


@pytest.fixture(scope="module")
async def db(servers: Servers) -> AsyncIterator[Database]:
    database = Database(servers.database_url, "scoring")
    yield database
    await database.dispose()


async def publish(db: Database, leads: list[list[Envelope]], key: bytes | None) -> list[tuple[Any, ...]]:
    """Each lead's events applied as the consumer applies them; what was published, in order,
    beside the payload each decision made (and the cause it follows)."""
    made: list[tuple[Any, ...]] = []
    async with db.transaction() as session:
        first = (await session.execute(text("SELECT coalesce(max(id), 0) FROM outbox"))).scalar_one()
        batch = Batch(Active(1, RULES))
        for events in leads:
            standing = Standing(events[0].lead_id)
            for event in events:
                if key is not None:
                    event = opened(event, key)  # as a sealed lead's events reach scoring
                fold(standing.profile, event)
                before = standing.key
                decision = batch.apply(session, standing, NOW, event, outcome_of(event), retell=True)
                made.append((event, _payload(decision, standing, before, event.type)))
        batch.rows = {}  # the standings are not stored: only what was published is looked at
    async with db.transaction() as session:
        rows = await session.execute(
            text("SELECT value FROM outbox WHERE id > :id ORDER BY id"), {"id": first}
        )
        values = [value for (value,) in rows]
    assert len(values) == len(made)
    return [(value, *pair) for value, pair in zip(values, made, strict=True)]


def _payload(decision: Decision, standing: Standing, before: Any, cause: str) -> LeadClassified:
    return classification(decision, standing.profile, before, cause, 1)


def as_before(published: Envelope, cause: Envelope, data: dict[str, Any]) -> bytes:
    """The event as `Envelope.of` built it before (its id and moment the published one's)."""
    event = cause.follow_up(LEAD_CLASSIFIED, "scoring", None)
    return event.model_copy(
        update={"id": published.id, "occurred_at": published.occurred_at, "data": data}
    ).to_bytes()


async def test_a_published_classification_is_byte_for_byte_the_event_built_from_its_payload(
    db: Database,
) -> None:
    for value, cause, payload in await publish(db, varied_leads(120), key=None):
        published = Envelope.from_bytes(value)
        assert value == as_before(published, cause, payload.model_dump(mode="json", exclude_none=True))


async def test_a_sealed_classification_is_byte_for_byte_the_event_built_from_its_sealed_payload(
    db: Database,
) -> None:
    key = new_key()
    for value, cause, payload in await publish(db, varied_leads(60, seed=6), key=key):
        published = Envelope.from_bytes(value)
        # The tokens differ from one sealing to the next: the same sealed data, encoded as before,
        # is the same bytes; and opened, it is the payload.
        assert value == as_before(published, cause, published.data)
        assert opened(published, key).data == payload.model_dump(mode="json", exclude_none=True)


def test_data_given_encoded_is_what_the_envelope_encodes_itself() -> None:
    """Any payload, sealed or not: extra fields a newer producer sent, floats, text of every
    script, nothing left empty, no causation."""
    key = new_key()
    payloads: list[Payload] = [
        Payload(),
        Payload(a=1.5e-7, b=float(10**20), c='«ә» \u2028 \x00 "q"', d={"x": [None, True, 3]}, e=None),
        LeadClassified(score=0, temperature="cold", stage="suspect", rules_version=1),
    ]
    for payload in payloads:
        plain = Envelope.of(LEAD_CLASSIFIED, uuid.uuid4(), uuid.uuid4(), "scoring", payload)
        head = plain.model_copy(update={"data": {}})
        assert head.to_bytes_with(Envelope.encoded_data(payload)) == plain.to_bytes()
        sealed = seal_data(LEAD_CLASSIFIED, {**plain.data, "lead": {"email": "a@b.kz"}}, key)
        assert (
            head.to_bytes_with(DATA.dump_json(sealed)) == plain.model_copy(update={"data": sealed}).to_bytes()
        )
    with pytest.raises(ValueError, match="has none of its own"):
        plain.to_bytes_with(b"{}")


def test_the_events_are_encoded_with_their_moment_and_causation_as_before() -> None:
    at = datetime.fromisoformat("2026-03-01T10:00:00.000001+05:00")
    for causation in (None, uuid.uuid4()):
        event = Envelope(
            type=LEAD_CLASSIFIED,
            lead_id=uuid.uuid4(),
            correlation_id=uuid.uuid4(),
            causation_id=causation,
            producer="scoring",
            occurred_at=at,
        )
        assert event.to_bytes_with(b'{"k":1}') == event.model_copy(update={"data": {"k": 1}}).to_bytes()


async def test_a_classification_too_large_is_refused_naming_the_same_field_as_before(db: Database) -> None:
    """The size is checked on the bytes staged, and the largest field named from them."""
    lead = captured(1, custom={"k": "ә" * MAX_EVENT_BYTES})
    payload = LeadClassified(score=0, temperature="cold", stage="suspect", rules_version=1, lead=lead.data)
    event = lead.follow_up(LEAD_CLASSIFIED, "scoring", None)
    refusals = []
    async with db.transaction() as session:
        for encoded in (None, event.to_bytes_with(Envelope.encoded_data(payload))):
            before = lead.follow_up(LEAD_CLASSIFIED, "scoring", payload) if encoded is None else event
            with pytest.raises(EventTooLarge) as refused:
                add_to_outbox(session, "topic", before, encoded=encoded)
            refusals.append(refused.value.errors)
    assert refusals[0] == refusals[1] and [field for field, _ in refusals[0]] == ["lead"]
