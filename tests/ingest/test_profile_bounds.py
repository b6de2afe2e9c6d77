"""A person's merged profile is bounded, and `lead.updated` carries only what changed: the
oversized-merge attack (new custom fields on every post to one email) is a 422 naming the
field for a server's key, left out for a web page's, never an event the broker refuses."""

import uuid

import httpx
from sqlalchemy import text

from services.ingest.profiles import MAX_CUSTOM_FIELDS
from shared.events import LEAD_UPDATED, Envelope
from shared.outbox import MAX_EVENT_BYTES, EventTooLarge, add_to_outbox
from tests.conftest import Servers
from tests.helpers import create_source, opened_events_of, post_lead, refused_fields
from tests.ingest.conftest import ingest_db


def fifty_fields(post: int) -> dict[str, str]:
    """What the attack posts each time: 50 new custom fields of 1,000 characters."""
    return {f"p{post}_f{i}": "x" * 1000 for i in range(50)}


async def stored_custom(ingest: httpx.AsyncClient, lead_id: str) -> dict[str, object]:
    async with ingest_db(ingest).transaction() as session:
        row = (
            await session.execute(text("SELECT attributes FROM leads WHERE id = :id"), {"id": lead_id})
        ).one()
    return dict(row[0].get("custom", {}))


async def test_new_custom_fields_past_the_bound_are_refused_naming_the_field(
    servers: Servers, ingest: httpx.AsyncClient
) -> None:
    source = await create_source(ingest)
    email = f"{uuid.uuid4().hex[:8]}@bounds.example.kz"
    accepted = []
    for post in range(MAX_CUSTOM_FIELDS // 50):
        response = await post_lead(ingest, source["key"], email=email, custom=fifty_fields(post))
        assert response.status_code == 202, response.text
        accepted.append(response.json()["lead_id"])
    lead_id = accepted[0]
    assert set(accepted) == {lead_id}
    before = await stored_custom(ingest, lead_id)

    over = await post_lead(ingest, source["key"], email=email, custom=fifty_fields(99))
    assert refused_fields(over) == ["custom"]
    assert f"at most {MAX_CUSTOM_FIELDS}" in over.json()["errors"][0]["reason"]
    assert await stored_custom(ingest, lead_id) == before, "a refused merge changes nothing"

    # A known field changed, or a field replaced, still goes through.
    changed = await post_lead(ingest, source["key"], email=email, custom={"p0_f0": "changed"})
    assert changed.status_code == 202, changed.text
    updates = await opened_events_of(
        ingest, servers.bootstrap, lead_id, until=lambda es: sum(e.type == LEAD_UPDATED for e in es) >= 2
    )
    merges = [e for e in updates if e.type == LEAD_UPDATED]
    # Each update carries what changed, not the whole profile.
    assert [sorted(e.data["changes"]["custom"]) for e in merges] == [
        sorted(fifty_fields(1)),
        ["p0_f0"],
    ]
    assert all(len(e.to_bytes()) < 60_000 for e in merges)


async def test_a_form_attack_grows_nothing_and_is_answered_as_a_new_person_is(
    servers: Servers, ingest: httpx.AsyncClient
) -> None:
    """The public form may not learn who is known: a 422 "would give this person 150 custom
    fields" told it the person was, and how much their profile held (found by a review). The
    new custom fields past the bound are left out, and the post answered 202 as any other.
    The attack comes from many addresses: from one, the limit of form posts holds it back."""
    source = await create_source(ingest)
    email = f"{uuid.uuid4().hex[:8]}@attack.example.kz"
    statuses, lead_ids = [], set()
    app = ingest._transport.app  # type: ignore[attr-defined]
    for post in range(25):
        form = {"email": email, **fifty_fields(post)}
        transport = httpx.ASGITransport(app=app, client=(f"192.0.2.{post + 1}", 40000))
        async with httpx.AsyncClient(transport=transport, base_url="http://ingest") as attacker:
            response = await attacker.post(
                f"/v1/forms/{source['id']}", data=form, headers={"accept": "application/json"}
            )
        statuses.append(response.status_code)
        lead_ids.add(response.json().get("lead_id"))
    assert statuses == [202] * 25
    [lead_id] = lead_ids
    assert set(await stored_custom(ingest, lead_id)) == {*fifty_fields(0), *fifty_fields(1)}

    after = await post_lead(ingest, source["key"], email=f"next-{email}")
    assert after.status_code == 202
    lead_id = after.json()["lead_id"]
    assert await opened_events_of(ingest, servers.bootstrap, lead_id, until=lambda es: len(es) >= 1)


async def test_a_batch_refuses_only_the_item_over_the_bound(ingest: httpx.AsyncClient) -> None:
    source = await create_source(ingest)
    email = f"{uuid.uuid4().hex[:8]}@batch.example.kz"
    for post in range(2):
        assert (
            await post_lead(ingest, source["key"], email=email, custom=fifty_fields(post))
        ).status_code == 202
    items = [
        {"email": f"first-{email}"},
        {"email": email, "custom": fifty_fields(7)},
        {"email": f"last-{email}"},
    ]
    response = await ingest.post(
        "/v1/leads:batch", json={"leads": items}, headers={"X-Source-Key": source["key"]}
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert (body["accepted"], body["rejected"]) == (2, 1)
    assert [r["status"] for r in body["results"]] == [202, 422, 202]
    assert [e["field"] for e in body["results"][1]["errors"]] == ["custom"]


def test_an_event_too_large_to_stage_is_refused_naming_its_largest_field() -> None:
    event = Envelope(
        type="lead.updated",
        lead_id=uuid.uuid4(),
        correlation_id=uuid.uuid4(),
        producer="ingest",
        data={"channel": "web_form", "changes": {"custom": {"k": "x" * MAX_EVENT_BYTES}}},
    )

    class Session:
        info: dict[str, object] = {}

    try:
        add_to_outbox(Session(), "topic", event)  # type: ignore[arg-type]
    except EventTooLarge as error:
        assert [field for field, _ in error.errors] == ["changes"]
        assert Session.info == {}, "nothing staged"
    else:
        raise AssertionError("an oversized event was staged")
