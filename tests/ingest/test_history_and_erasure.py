"""Activities, sales outcomes, consent, and erasure of a person everywhere."""

import asyncio
import uuid

import httpx
import pytest
from sqlalchemy import text

from services.ingest.history import _FORGET_CONTACT_POINTS, erase_lead
from shared.personal import is_sealed, opened
from tests.conftest import ADMIN, Servers, eventually
from tests.helpers import create_source, events_of, lead_key, opened_events_of, post_lead
from tests.ingest.conftest import ingest_db


async def new_lead(client: httpx.AsyncClient, key: str) -> tuple[str, str]:
    email = f"h-{uuid.uuid4().hex[:10]}@example.kz"
    return (await post_lead(client, key, email=email)).json()["lead_id"], email


async def test_activity_by_lead_id_is_stored_and_published(
    ingest: httpx.AsyncClient, servers: Servers
) -> None:
    key = (await create_source(ingest))["key"]
    lead_id, _ = await new_lead(ingest, key)
    body = {"lead_id": lead_id, "type": "page_view", "properties": {"url": "https://shop.kz/pricing"}}
    response = await ingest.post("/v1/activities", json=body, headers={"X-Source-Key": key})
    assert response.status_code == 202 and response.json()["lead_id"] == lead_id
    events = await opened_events_of(ingest, servers.bootstrap, lead_id, lambda es: len(es) >= 2)
    assert events[1].type == "activity.recorded"
    assert events[1].data["activity_type"] == "page_view"
    assert events[1].data["properties"] == {"url": "https://shop.kz/pricing"}


async def test_activity_by_unknown_email_creates_the_lead(
    ingest: httpx.AsyncClient, servers: Servers
) -> None:
    key = (await create_source(ingest))["key"]
    body = {"email": f"new-{uuid.uuid4().hex[:8]}@example.kz", "type": "webinar_attended"}
    response = await ingest.post("/v1/activities", json=body, headers={"X-Source-Key": key})
    lead_id = response.json()["lead_id"]
    events = await opened_events_of(ingest, servers.bootstrap, lead_id, lambda es: len(es) >= 2)
    assert [e.type for e in events] == ["lead.captured", "activity.recorded"]


async def test_activity_with_a_client_event_id_is_recorded_once(ingest: httpx.AsyncClient) -> None:
    key = (await create_source(ingest))["key"]
    lead_id, _ = await new_lead(ingest, key)
    body = {"lead_id": lead_id, "type": "email_open", "event_id": "esp-123"}
    first = await ingest.post("/v1/activities", json=body, headers={"X-Source-Key": key})
    again = await ingest.post("/v1/activities", json=body, headers={"X-Source-Key": key})
    assert first.json() == again.json()
    lead = (await ingest.get(f"/v1/leads/{lead_id}", headers=ADMIN)).json()
    assert [h["type"] for h in lead["history"]] == ["email_open"]


async def test_an_outcome_is_recorded_once_per_event_id_whatever_idempotency_key_comes_with_it(
    ingest: httpx.AsyncClient,
) -> None:
    """A CRM retrying a won deal once without and once with an Idempotency-Key: one sale."""
    key = (await create_source(ingest))["key"]
    lead_id, _ = await new_lead(ingest, key)
    body = {"lead_id": lead_id, "type": "won", "amount": 100, "event_id": "crm-deal-4711"}
    first = await ingest.post("/v1/outcomes", json=body, headers={"X-Source-Key": key})
    keyed = {"X-Source-Key": key, "Idempotency-Key": "retry-1"}
    retried = await ingest.post("/v1/outcomes", json=body, headers=keyed)
    assert retried.status_code == 202 and retried.json() == first.json()
    assert retried.headers.get("Idempotent-Replayed") == "true"
    again = await ingest.post("/v1/outcomes", json=body, headers=keyed)
    assert again.json() == first.json()
    lead = (await ingest.get(f"/v1/leads/{lead_id}", headers=ADMIN)).json()
    assert [h["type"] for h in lead["history"]] == ["won"]
    other = {**body, "amount": 200}
    reused = await ingest.post(
        "/v1/outcomes", json=other, headers={"X-Source-Key": key, "Idempotency-Key": "new"}
    )
    assert reused.status_code == 422 and [e["field"] for e in reused.json()["errors"]] == ["event_id"]


async def test_activity_refusals(ingest: httpx.AsyncClient) -> None:
    key = (await create_source(ingest))["key"]
    headers = {"X-Source-Key": key}
    unknown = await ingest.post(
        "/v1/activities", json={"lead_id": str(uuid.uuid4()), "type": "page_view"}, headers=headers
    )
    assert unknown.status_code == 404
    nameless = await ingest.post("/v1/activities", json={"type": "page_view"}, headers=headers)
    assert nameless.status_code == 422
    bad_type = await ingest.post(
        "/v1/activities", json={"email": "x@example.kz", "type": "dance"}, headers=headers
    )
    assert bad_type.status_code == 422 and bad_type.json()["errors"][0]["field"] == "type"


async def test_outcomes_are_published_and_validated(ingest: httpx.AsyncClient, servers: Servers) -> None:
    key = (await create_source(ingest, channel="api"))["key"]
    headers = {"X-Source-Key": key}
    lead_id, _ = await new_lead(ingest, key)
    won = {"lead_id": lead_id, "type": "won", "amount": 720, "currency": "USD"}
    assert (await ingest.post("/v1/outcomes", json=won, headers=headers)).status_code == 202
    no_amount = await ingest.post("/v1/outcomes", json={"lead_id": lead_id, "type": "won"}, headers=headers)
    no_reason = await ingest.post("/v1/outcomes", json={"lead_id": lead_id, "type": "lost"}, headers=headers)
    assert no_amount.status_code == no_reason.status_code == 422
    # Named by the field a CRM's mapping fills, not `body`
    assert [(e["field"], e["reason"]) for e in no_amount.json()["errors"]] == [
        ("amount", "a won outcome needs its amount")
    ]
    assert [(e["field"], e["reason"]) for e in no_reason.json()["errors"]] == [
        ("reason", "a lost outcome needs its reason")
    ]
    events = await opened_events_of(ingest, servers.bootstrap, lead_id, lambda es: len(es) >= 2)
    assert events[1].type == "outcome.recorded"
    assert (events[1].data["outcome"], events[1].data["amount"], events[1].data["currency"]) == (
        "won",
        720,
        "USD",
    )


@pytest.mark.parametrize("scope", ["history", "capture"])
async def test_unsubscribe_is_a_consent_event(
    ingest: httpx.AsyncClient, servers: Servers, scope: str
) -> None:
    """It says which kind of key recorded it: a web page's (`capture`) does not undo an
    unsubscribe in nurture, since anyone may send it with anyone's address."""
    key = (await create_source(ingest, scope=scope))["key"]
    lead_id, email = await new_lead(ingest, key)
    body = {"email": email, "granted": False}
    assert (await ingest.post("/v1/consent", json=body, headers={"X-Source-Key": key})).status_code == 202
    events = await opened_events_of(ingest, servers.bootstrap, lead_id, lambda es: len(es) >= 2)
    assert events[1].type == "consent.changed"
    assert events[1].data == {**events[1].data, "granted": False, "purpose": "marketing", "key_scope": scope}
    lead = (await ingest.get(f"/v1/leads/{lead_id}", headers=ADMIN)).json()
    assert lead["attributes"]["consent"] is False


async def test_a_withdrawal_by_an_email_nobody_has_captures_nobody(ingest: httpx.AsyncClient) -> None:
    """A person who said "stop" was made a lead for saying it (and counted in the funnel)."""
    server = {"X-Source-Key": (await create_source(ingest))["key"]}
    page = {"X-Source-Key": (await create_source(ingest, scope="capture"))["key"]}
    email = f"forget-{uuid.uuid4().hex[:8]}@example.kz"
    body = {"email": email, "granted": False, "purpose": "marketing"}
    told = await ingest.post("/v1/consent", json=body, headers=server)
    assert told.status_code == 404, told.text
    assert told.json()["title"] == "No such lead"
    alike = await ingest.post("/v1/consent", json=body, headers=page)  # cannot tell who is known
    assert alike.status_code == 202, alike.text
    async with ingest_db(ingest).transaction() as session:
        leads = await session.execute(text("SELECT count(*) FROM leads WHERE email = :e"), {"e": email})
        assert leads.scalar_one() == 0
    given = await ingest.post("/v1/consent", json={**body, "granted": True}, headers=server)
    assert given.status_code == 202, "consent given by a new person still makes the lead"


async def test_what_events_say_about_the_person_is_sealed_with_the_leads_key(
    ingest: httpx.AsyncClient, servers: Servers
) -> None:
    """A second Kafka client reading ingest's topic sees how the lead came, not who it is."""
    key = (await create_source(ingest))["key"]
    email = f"sealed-{uuid.uuid4().hex[:8]}@example.kz"
    posted = await post_lead(
        ingest, key, email=email, phone="+77010000000", first_name="Dana", utm={"campaign": "spring"}
    )
    lead_id = posted.json()["lead_id"]
    body = {"lead_id": lead_id, "type": "chat_message", "properties": {"text": "call Dana on +77010000000"}}
    assert (await ingest.post("/v1/activities", json=body, headers={"X-Source-Key": key})).status_code == 202
    raw = await events_of(servers.bootstrap, lead_id, lambda es: len(es) >= 2)
    for event in raw:
        text_of = event.model_dump_json()
        assert email not in text_of and "77010000000" not in text_of and "Dana" not in text_of
    captured, activity = raw
    assert captured.data["utm"] == {"campaign": "spring"} and "channel" in captured.data
    assert set(activity.data["properties"]) == {"sealed"}
    seal_key = await lead_key(ingest, lead_id)
    assert seal_key is not None
    assert opened(captured, seal_key).data["email"] == email
    assert opened(activity, seal_key).data["properties"] == body["properties"]
    assert (await ingest.post("/v1/lead-keys:fetch", json={"lead_ids": [lead_id]})).status_code == 403
    viewer = {"Authorization": "Bearer dev-viewer-token"}
    fetched = await ingest.post("/v1/lead-keys:fetch", json={"lead_ids": [lead_id]}, headers=viewer)
    assert fetched.status_code in (401, 403)


async def test_erasure_deletes_the_person_and_tells_every_service(
    ingest: httpx.AsyncClient, servers: Servers
) -> None:
    key = (await create_source(ingest))["key"]
    lead_id, email = await new_lead(ingest, key)
    await ingest.post(
        "/v1/activities", json={"lead_id": lead_id, "type": "page_view"}, headers={"X-Source-Key": key}
    )
    assert (await ingest.delete(f"/v1/leads/{lead_id}")).status_code == 403
    assert (await ingest.delete(f"/v1/leads/{lead_id}", headers=ADMIN)).status_code == 204
    assert (await ingest.get(f"/v1/leads/{lead_id}", headers=ADMIN)).status_code == 404
    async with ingest_db(ingest).transaction() as session:
        left = await session.execute(
            text(
                "SELECT (SELECT count(*) FROM leads WHERE email = :e)"
                " + (SELECT count(*) FROM lead_history WHERE lead_id = :id)"
            ),
            {"e": email, "id": lead_id},
        )
        assert left.scalar_one() == 0
    # What stays on the broker until its retention ends can no longer be read: the key is gone.
    events = await events_of(servers.bootstrap, lead_id, lambda es: any(e.type == "lead.erased" for e in es))
    assert events[-1].type == "lead.erased"
    assert events[0].type == "lead.captured" and is_sealed(events[0])
    assert all(email not in e.model_dump_json() for e in events)
    assert await lead_key(ingest, lead_id) is None
    late = await ingest.post(
        "/v1/activities", json={"lead_id": lead_id, "type": "page_view"}, headers={"X-Source-Key": key}
    )
    assert late.status_code == 410
    assert (await ingest.delete(f"/v1/leads/{lead_id}", headers=ADMIN)).status_code == 204
    assert (await ingest.delete(f"/v1/leads/{uuid.uuid4()}", headers=ADMIN)).status_code == 404
    again = await post_lead(ingest, key, email=email)
    assert again.json()["status"] == "accepted" and again.json()["lead_id"] != lead_id


async def test_an_erased_persons_phone_goes_from_the_lead_it_was_sent_to_with_another_email(
    ingest: httpx.AsyncClient,
) -> None:
    """A submission with one person's email and another's phone merges into the email's lead
    and keeps the phone, naming its lead, on that lead's history: the phone's owner was erased
    and their number was still shown there (found by a review). What else it said stays."""
    key = (await create_source(ingest))["key"]
    email, phone = f"{uuid.uuid4().hex[:8]}@example.kz", f"+7701{uuid.uuid4().int % 10_000_000:07d}"
    kept = (await post_lead(ingest, key, email=email)).json()["lead_id"]
    erased = (await post_lead(ingest, key, phone=phone)).json()["lead_id"]
    await post_lead(ingest, key, email=email, phone=phone, message="Call me")
    before = (await ingest.get(f"/v1/leads/{kept}", headers=ADMIN)).json()
    assert [h["properties"].get("conflicts") for h in before["history"]] == [{"phone": erased}]
    assert (await ingest.delete(f"/v1/leads/{erased}", headers=ADMIN)).status_code == 204
    after = (await ingest.get(f"/v1/leads/{kept}", headers=ADMIN)).json()
    assert [h["properties"] for h in after["history"]] == [{"message": "Call me"}]
    assert phone not in str(after) and erased not in str(after)


async def test_an_erasure_finds_its_email_and_phone_in_other_leads_history_by_indexes(
    ingest: httpx.AsyncClient,
) -> None:
    """Not by reading every lead's history (millions of rows) at each erasure."""
    contact = {"lead_id": str(uuid.uuid4()), "email": "x@example.kz", "phone": "+77010000000"}
    async with ingest_db(ingest).transaction() as session:
        await session.execute(text("SET LOCAL enable_seqscan = off"))  # what it can use, not what is cheapest
        plan = await session.execute(text(f"EXPLAIN {_FORGET_CONTACT_POINTS.text}"), contact)
        used = "\n".join(row[0] for row in plan)
    for index in ("lead_history_phone_conflicts", "lead_history_kept_emails", "lead_history_kept_phones"):
        assert index in used, used


async def test_an_activity_meeting_an_erasure_under_way_waits_and_finds_the_lead_erased(
    ingest: httpx.AsyncClient,
) -> None:
    """The erasure has deleted the lead's history and not yet committed when an activity for
    the lead comes: it must not be stored after the erasure, where nothing would erase it."""
    key = (await create_source(ingest))["key"]
    lead_id, _ = await new_lead(ingest, key)
    db = ingest_db(ingest)
    async with db.transaction() as erasure:
        assert await erase_lead(erasure, uuid.UUID(lead_id))
        body = {"lead_id": lead_id, "type": "page_view"}
        posted = asyncio.create_task(ingest.post("/v1/activities", json=body, headers={"X-Source-Key": key}))

        async def waiting_or_answered() -> bool:
            if posted.done():
                return True
            async with db.engine.connect() as watcher:
                waiting = "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock'"
                return bool((await watcher.execute(text(waiting))).scalar())

        await eventually(waiting_or_answered)
    response = await posted
    async with db.transaction() as session:
        left = await session.execute(
            text("SELECT count(*) FROM lead_history WHERE lead_id = :id"), {"id": lead_id}
        )
        assert (response.status_code, left.scalar()) == (410, 0)


@pytest.mark.parametrize("point", ["email", "phone"])
async def test_an_erased_persons_contact_goes_from_the_lead_their_first_submission_merged_into(
    ingest: httpx.AsyncClient, point: str
) -> None:
    """Dana sent her email with B's phone (or her phone with B's email): the identity rule
    merged her into B and kept her email (phone) on that activity. She later became a lead of
    her own, and her erasure left her email (phone) in B's history (found by a review). What
    else the activity said stays; the saved answer to her first post keeps answering it, and
    nothing it was made of."""
    key = (await create_source(ingest))["key"]
    b = {"email": f"b-{uuid.uuid4().hex[:8]}@example.kz", "phone": f"+7701{uuid.uuid4().int % 10**7:07d}"}
    dana = {"email": f"d-{uuid.uuid4().hex[:8]}@example.kz", "phone": f"+7702{uuid.uuid4().int % 10**7:07d}"}
    kept = (await post_lead(ingest, key, **b)).json()["lead_id"]
    sent = {**b, point: dana[point], "message": "Call me"}
    retried = {"X-Source-Key": key, "Idempotency-Key": str(uuid.uuid4())}
    merged = await ingest.post("/v1/leads", json=sent, headers=retried)
    assert merged.json() == {"lead_id": kept, "status": "merged"}
    signed_up = (await post_lead(ingest, key, **{point: dana[point]})).json()
    assert signed_up["status"] == "accepted" and signed_up["lead_id"] != kept
    before = (await ingest.get(f"/v1/leads/{kept}", headers=ADMIN)).json()
    assert [h["properties"] for h in before["history"]] == [{point: dana[point], "message": "Call me"}]

    assert (await ingest.delete(f"/v1/leads/{signed_up['lead_id']}", headers=ADMIN)).status_code == 204
    after = (await ingest.get(f"/v1/leads/{kept}", headers=ADMIN)).json()
    assert [h["properties"] for h in after["history"]] == [{"message": "Call me"}]
    assert dana[point] not in str(after) and (after["email"], after["phone"]) == (b["email"], b["phone"])
    async with ingest_db(ingest).transaction() as session:
        held = text("SELECT count(*) FROM lead_history WHERE properties::text LIKE :p")
        assert (await session.execute(held, {"p": f"%{dana[point]}%"})).scalar_one() == 0
        digest = text("SELECT fingerprint FROM idempotency_keys WHERE key = :k")
        assert (await session.execute(digest, {"k": retried["Idempotency-Key"]})).scalar_one() is None
    again = await ingest.post("/v1/leads", json=sent, headers=retried)
    assert (again.json(), again.headers.get("idempotent-replayed")) == (merged.json(), "true")


async def test_a_consent_for_a_channel_or_purpose_nothing_knows_is_refused_not_recorded_to_no_effect(
    ingest: httpx.AsyncClient, servers: Servers
) -> None:
    """A CRM sending `"channel": "Email"` or `"purpose": "Marketing"` was answered 202 and its
    withdrawal changed nothing: follow-up knows `email` and `marketing` only, so the person who
    opted out kept getting messages. A letter case is the same channel; a typo is a 422 naming
    the field; `all` is marketing too, here as in nurture."""
    key = (await create_source(ingest))["key"]
    lead_id, email = await new_lead(ingest, key)
    headers = {"X-Source-Key": key}
    for body, field in (
        ({"email": email, "granted": False, "channel": "emial"}, "channel"),
        ({"email": email, "granted": False, "purpose": "marketting"}, "purpose"),
        ({"email": email, "granted": False, "purpose": "newsletter"}, "purpose"),
    ):
        refused = await ingest.post("/v1/consent", json=body, headers=headers)
        assert refused.status_code == 422, refused.text
        assert [e["field"] for e in refused.json()["errors"]] == [field]
    said = {"email": email, "granted": False, "purpose": " Marketing ", "channel": "Email"}
    assert (await ingest.post("/v1/consent", json=said, headers=headers)).status_code == 202
    everything = {"email": email, "granted": False, "purpose": "ALL"}
    assert (await ingest.post("/v1/consent", json=everything, headers=headers)).status_code == 202
    events = await opened_events_of(ingest, servers.bootstrap, lead_id, lambda es: len(es) >= 3)
    assert [(e.data["purpose"], e.data.get("channel")) for e in events[1:]] == [
        ("marketing", "email"),
        ("all", None),
    ]
    lead = (await ingest.get(f"/v1/leads/{lead_id}", headers=ADMIN)).json()
    assert lead["attributes"]["consent"] is False, "withdrawn for all is an unsubscribe"
