"""Idempotency-Key retries get the first answer and publish nothing new; batches judge each item."""

import asyncio
import uuid
from datetime import timedelta

import httpx
from sqlalchemy import text

from services.ingest.app import create_app
from services.ingest.config import IngestSettings
from tests.conftest import ADMIN, Servers, eventually, running
from tests.helpers import create_source, opened_events_of
from tests.ingest.conftest import ingest_db
from tests.pg_proxy import in_front_of


async def test_retry_with_the_same_key_returns_the_first_answer_and_publishes_once(
    ingest: httpx.AsyncClient, servers: Servers
) -> None:
    key = (await create_source(ingest))["key"]
    headers = {"X-Source-Key": key, "Idempotency-Key": str(uuid.uuid4())}
    body = {"email": f"{uuid.uuid4().hex[:8]}@example.az", "timeframe": "immediately"}
    first = await ingest.post("/v1/leads", json=body, headers=headers)
    retry = await ingest.post("/v1/leads", json=body, headers=headers)
    assert first.status_code == retry.status_code == 202
    assert retry.json() == first.json() and retry.json()["status"] == "accepted"
    assert retry.headers["idempotent-replayed"] == "true" and "idempotent-replayed" not in first.headers
    # A third, unkeyed post of the same person is published; it marks the end of what the
    # retry could have published, so reading up to it proves the retry added nothing.
    marker = await ingest.post("/v1/leads", json=body, headers={"X-Source-Key": key})
    events = await opened_events_of(
        ingest, servers.bootstrap, first.json()["lead_id"], lambda es: len(es) >= 2
    )
    assert [e.type for e in events] == ["lead.captured", "activity.recorded"]
    assert marker.json()["status"] == "merged"


async def age_key(ingest: httpx.AsyncClient, key: str, by: timedelta) -> None:
    """Make the stored key as old as if it had been used `by` ago (time passes in the row)."""
    async with ingest_db(ingest).transaction() as session:
        aged = text("UPDATE idempotency_keys SET created_at = now() - CAST(:by AS interval) WHERE key = :key")
        assert (await session.execute(aged, {"by": by, "key": key})).rowcount == 1  # type: ignore[attr-defined]


async def test_a_key_is_replayed_within_its_window_and_forgotten_after_it(ingest: httpx.AsyncClient) -> None:
    window = timedelta(hours=ingest._transport.app.state.settings.idempotency_hours)  # type: ignore[attr-defined]
    key = str(uuid.uuid4())
    headers = {"X-Source-Key": (await create_source(ingest))["key"], "Idempotency-Key": key}
    body = {"email": f"{uuid.uuid4().hex[:8]}@example.az"}
    first = await ingest.post("/v1/leads", json=body, headers=headers)
    assert first.status_code == 202 and first.json()["status"] == "accepted"

    await age_key(ingest, key, window - timedelta(minutes=1))
    within = await ingest.post("/v1/leads", json=body, headers=headers)
    assert within.headers.get("idempotent-replayed") == "true" and within.json() == first.json()

    await age_key(ingest, key, window + timedelta(minutes=1))
    after = await ingest.post("/v1/leads", json=body, headers=headers)
    assert after.status_code == 202 and "idempotent-replayed" not in after.headers
    assert after.json() == {**first.json(), "status": "merged"}, "a new request: the same person again"
    again = await ingest.post("/v1/leads", json=body, headers=headers)
    assert again.headers.get("idempotent-replayed") == "true" and again.json() == after.json()


async def test_key_reused_for_another_request_is_refused(ingest: httpx.AsyncClient) -> None:
    key = (await create_source(ingest))["key"]
    headers = {"X-Source-Key": key, "Idempotency-Key": str(uuid.uuid4())}
    await ingest.post("/v1/leads", json={"email": "one@example.az"}, headers=headers)
    other = await ingest.post("/v1/leads", json={"email": "two@example.az"}, headers=headers)
    assert other.status_code == 422
    assert other.json()["errors"][0]["field"] == "Idempotency-Key"


async def test_concurrent_copies_of_one_request_make_one_lead(ingest: httpx.AsyncClient) -> None:
    key = (await create_source(ingest))["key"]
    headers = {"X-Source-Key": key, "Idempotency-Key": str(uuid.uuid4())}
    body = {"email": f"{uuid.uuid4().hex[:8]}@example.az"}
    answers = await asyncio.gather(*(ingest.post("/v1/leads", json=body, headers=headers) for _ in range(10)))
    assert {a.status_code for a in answers} == {202}
    assert len({a.json()["lead_id"] for a in answers}) == 1
    assert [a.json()["status"] for a in answers].count("accepted") == 10


async def test_keys_are_per_source(ingest: httpx.AsyncClient) -> None:
    shared_key = str(uuid.uuid4())
    answers = []
    for _ in range(2):
        key = (await create_source(ingest))["key"]
        body = {"email": f"{uuid.uuid4().hex[:8]}@example.az"}
        answers.append(
            await ingest.post(
                "/v1/leads", json=body, headers={"X-Source-Key": key, "Idempotency-Key": shared_key}
            )
        )
    assert answers[0].json()["lead_id"] != answers[1].json()["lead_id"]


async def test_batch_gives_a_result_per_item(ingest: httpx.AsyncClient, servers: Servers) -> None:
    key = (await create_source(ingest))["key"]
    leads = [
        {"email": f"{uuid.uuid4().hex[:8]}@example.kz", "timeframe": "immediately"},
        {"first_name": "no contact"},
        {"email": "broken@", "phone": "12"},
        {"phone": "+994 50 123 45 67"},
    ]
    response = await ingest.post("/v1/leads:batch", json={"leads": leads}, headers={"X-Source-Key": key})
    assert response.status_code == 200, response.text
    result = response.json()
    assert (result["accepted"], result["rejected"]) == (2, 2)
    assert [r["status"] for r in result["results"]] == [202, 422, 422, 202]
    assert {e["field"] for e in result["results"][2]["errors"]} == {"email", "phone"}
    lead_id = result["results"][0]["lead_id"]
    events = await opened_events_of(ingest, servers.bootstrap, lead_id, lambda es: len(es) >= 1)
    assert events[0].type == "lead.captured"


async def test_batch_over_500_is_refused(ingest: httpx.AsyncClient) -> None:
    key = (await create_source(ingest))["key"]
    leads = [{"phone": "+77010000000"}] * 501
    response = await ingest.post("/v1/leads:batch", json={"leads": leads}, headers={"X-Source-Key": key})
    assert response.status_code == 422
    assert response.json()["errors"][0]["field"] == "leads"


async def test_a_lead_whose_commit_went_unanswered_is_taken_once_when_the_client_retries(
    servers: Servers,
) -> None:
    """The lead's transaction commits, but the answer is lost on the way (`tests.pg_proxy`):
    ingest cannot know whether it was stored, answers 503 with Retry-After, and the client's
    retry with its Idempotency-Key gets the stored lead: one person, not two, and no 500."""
    proxy, database_url = in_front_of(servers.database_url)
    app = create_app(servers.settings(IngestSettings, database_url=database_url))
    async with proxy.running(), running(app) as client:
        key = (await create_source(client))["key"]
        email = f"{uuid.uuid4().hex[:8]}@lost-answer.example.kz"
        headers = {"X-Source-Key": key, "Idempotency-Key": str(uuid.uuid4())}
        proxy.lose_the_next_after(b'INSERT INTO "idempotency_keys"')
        first = await client.post("/v1/leads", json={"email": email}, headers=headers)
        assert (first.status_code, first.headers.get("Retry-After"), proxy.lost) == (503, "2", 1)

        async def retried() -> httpx.Response | None:
            answer = await client.post("/v1/leads", json={"email": email}, headers=headers)
            return answer if answer.status_code != 503 else None

        again = await eventually(retried, timeout=30, interval=0.2)
        assert again.status_code == 202, again.text
        async with ingest_db(client).transaction() as session:
            query = text("SELECT id::text FROM leads WHERE email = :email")
            stored = [row[0] for row in await session.execute(query, {"email": email})]
    assert stored == [again.json()["lead_id"]]


async def staged(ingest: httpx.AsyncClient) -> int:
    """How many messages ingest has staged to publish or published (the relay moves a row from
    the outbox to the journal in one statement: the sum only grows when something is staged)."""
    async with ingest_db(ingest).transaction() as session:
        query = text("SELECT (SELECT count(*) FROM outbox) + (SELECT count(*) FROM journal)")
        return int((await session.execute(query)).scalar_one())


async def test_a_retry_after_the_persons_erasure_gets_the_first_answer_and_brings_nobody_back(
    ingest: httpx.AsyncClient,
) -> None:
    """The erasure deleted the saved answers naming the person: a retry of a capture (or of an
    activity by their email) sent before it ran again, and the erased person was a lead again.
    Nothing of the person stays with the answers either: not even a digest of what was sent."""
    source = {"X-Source-Key": (await create_source(ingest))["key"]}
    email, key, event_id = f"{uuid.uuid4().hex[:8]}@example.kz", str(uuid.uuid4()), uuid.uuid4().hex
    lead = {"email": email, "phone": "+77015550101", "first_name": "Dana", "timeframe": "immediately"}
    first = await ingest.post("/v1/leads", json=lead, headers={**source, "Idempotency-Key": key})
    activity = {"email": email, "type": "demo_request", "event_id": event_id}
    recorded = await ingest.post("/v1/activities", json=activity, headers=source)
    lead_id = first.json()["lead_id"]
    assert first.status_code == recorded.status_code == 202 and recorded.json()["lead_id"] == lead_id
    assert (await ingest.delete(f"/v1/leads/{lead_id}", headers=ADMIN)).status_code == 204

    before = await staged(ingest)
    retry = await ingest.post("/v1/leads", json=lead, headers={**source, "Idempotency-Key": key})
    assert (retry.status_code, retry.json(), retry.headers.get("idempotent-replayed")) == (
        202,
        first.json(),
        "true",
    )
    again = await ingest.post("/v1/activities", json=activity, headers=source)
    assert (again.json(), again.headers.get("idempotent-replayed")) == (recorded.json(), "true")
    assert await staged(ingest) == before, "a retry publishes nothing"
    async with ingest_db(ingest).transaction() as session:
        leads = await session.execute(text("SELECT count(*) FROM leads WHERE email = :e"), {"e": email})
        assert leads.scalar_one() == 0
        kept = text("SELECT key, fingerprint FROM idempotency_keys WHERE key IN (:k, :e) ORDER BY key = :k")
        assert list(await session.execute(kept, {"k": key, "e": event_id})) == [(event_id, None), (key, None)]


async def test_a_batch_retried_after_one_of_its_people_was_erased_changes_nobody(
    ingest: httpx.AsyncClient,
) -> None:
    """One person's erasure deleted the whole batch's saved answer: the retry made the erased
    person a lead again and merged every other person once more, each with another
    form_submitted activity (engagement points for nothing)."""
    source = (await create_source(ingest))["key"]
    headers = {"X-Source-Key": source, "Idempotency-Key": str(uuid.uuid4())}
    batch = {"leads": [{"email": f"{uuid.uuid4().hex[:8]}@example.kz"} for _ in range(3)]}
    first = await ingest.post("/v1/leads:batch", json=batch, headers=headers)
    assert first.status_code == 200 and first.json()["accepted"] == 3, first.text
    kept, erased, other = (r["lead_id"] for r in first.json()["results"])
    assert (await ingest.delete(f"/v1/leads/{erased}", headers=ADMIN)).status_code == 204

    retry = await ingest.post("/v1/leads:batch", json=batch, headers=headers)
    assert (retry.status_code, retry.json(), retry.headers.get("idempotent-replayed")) == (
        200,
        first.json(),
        "true",
    )
    for lead_id in (kept, other):
        lead = (await ingest.get(f"/v1/leads/{lead_id}", headers=ADMIN)).json()
        assert lead["history"] == [], "merged again by the retry"
    async with ingest_db(ingest).transaction() as session:
        query = text("SELECT count(*) FROM leads WHERE email = :e")
        assert (await session.execute(query, {"e": batch["leads"][1]["email"]})).scalar_one() == 0
