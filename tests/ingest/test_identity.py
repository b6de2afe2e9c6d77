"""One person is one lead: repeats merge (lead.updated + an activity), conflicts follow the rule."""

import asyncio
import uuid

import httpx
from sqlalchemy import text

from tests.conftest import ADMIN, Servers
from tests.helpers import create_source, events_of, opened_events_of, post_lead
from tests.ingest.conftest import ingest_db


def unique_email() -> str:
    return f"p-{uuid.uuid4().hex[:10]}@example.kz"


def unique_phone() -> str:
    return f"+7701{uuid.uuid4().int % 10_000_000:07d}"


async def count_leads(client: httpx.AsyncClient, email: str) -> int:
    async with ingest_db(client).transaction() as session:
        return int(
            (
                await session.execute(text("SELECT count(*) FROM leads WHERE email = :e"), {"e": email})
            ).scalar_one()
        )


async def test_repeat_submission_merges_new_fields_and_is_an_activity(
    ingest: httpx.AsyncClient, servers: Servers
) -> None:
    key = (await create_source(ingest, channel="landing_page"))["key"]
    email = unique_email()
    first = await post_lead(ingest, key, email=email, first_name="Аружан", timeframe="none")
    again = await post_lead(ingest, key, email=email.upper(), company="Qazaq Trade", timeframe="immediately")
    assert first.status_code == again.status_code == 202
    assert first.json()["status"] == "accepted" and again.json()["status"] == "merged"
    lead_id = first.json()["lead_id"]
    assert again.json()["lead_id"] == lead_id
    assert await count_leads(ingest, email) == 1

    events = await opened_events_of(ingest, servers.bootstrap, lead_id, lambda es: len(es) >= 3)
    assert [e.type for e in events] == ["lead.captured", "lead.updated", "activity.recorded"]
    assert events[1].data["changes"] == {"company": "Qazaq Trade", "timeframe": "immediately"}
    assert events[2].data["activity_type"] == "form_submitted"
    stored = (await ingest.get(f"/v1/leads/{lead_id}", headers=ADMIN)).json()
    assert stored["attributes"]["first_name"] == "Аружан"
    assert stored["attributes"]["company"] == "Qazaq Trade"
    assert [h["type"] for h in stored["history"]] == ["form_submitted"]


async def test_same_phone_written_differently_is_the_same_lead(ingest: httpx.AsyncClient) -> None:
    key = (await create_source(ingest, default_region="KZ"))["key"]
    local = f"8 701 {uuid.uuid4().int % 10_000_000:07d}"
    first = await post_lead(ingest, key, phone=local)
    international = "+7" + local.replace(" ", "")[1:]
    again = await post_lead(ingest, key, phone=international, email=unique_email())
    assert again.json() == {"lead_id": first.json()["lead_id"], "status": "merged"}


async def test_identical_repeat_records_an_activity_but_no_update(
    ingest: httpx.AsyncClient, servers: Servers
) -> None:
    key = (await create_source(ingest))["key"]
    email = unique_email()
    lead_id = (await post_lead(ingest, key, email=email, first_name="Leyla")).json()["lead_id"]
    await post_lead(ingest, key, email=email, first_name="Leyla")
    events = await opened_events_of(ingest, servers.bootstrap, lead_id, lambda es: len(es) >= 2)
    assert [e.type for e in events] == ["lead.captured", "activity.recorded"]


async def test_email_wins_when_email_and_phone_point_at_different_leads(
    ingest: httpx.AsyncClient, servers: Servers
) -> None:
    key = (await create_source(ingest))["key"]
    email, phone = unique_email(), unique_phone()
    by_email = (await post_lead(ingest, key, email=email)).json()["lead_id"]
    by_phone = (await post_lead(ingest, key, phone=phone)).json()["lead_id"]

    both = await post_lead(ingest, key, email=email, phone=phone, city="Baku")
    assert both.json() == {"lead_id": by_email, "status": "merged"}
    email_lead = (await ingest.get(f"/v1/leads/{by_email}", headers=ADMIN)).json()
    phone_lead = (await ingest.get(f"/v1/leads/{by_phone}", headers=ADMIN)).json()
    assert email_lead["phone"] is None and email_lead["attributes"]["city"] == "Baku"
    assert phone_lead["phone"] == phone
    events = await opened_events_of(ingest, servers.bootstrap, by_email, lambda es: len(es) >= 3)
    update = next(e for e in events if e.type == "lead.updated")
    assert update.data["conflicts"] == {"phone": by_phone}
    activity = next(e for e in events if e.type == "activity.recorded")
    assert activity.data["properties"]["phone"] == phone


async def test_missing_contact_point_is_filled_but_never_overwritten(ingest: httpx.AsyncClient) -> None:
    key = (await create_source(ingest))["key"]
    email, phone, other = unique_email(), unique_phone(), unique_phone()
    lead_id = (await post_lead(ingest, key, email=email)).json()["lead_id"]
    await post_lead(ingest, key, email=email, phone=phone)
    await post_lead(ingest, key, email=email, phone=other)
    lead = (await ingest.get(f"/v1/leads/{lead_id}", headers=ADMIN)).json()
    assert lead["phone"] == phone
    assert lead["history"][-1]["properties"]["phone"] == other


async def test_first_touch_utm_is_kept(ingest: httpx.AsyncClient) -> None:
    key = (await create_source(ingest))["key"]
    email = unique_email()
    lead_id = (
        await post_lead(
            ingest, key, email=email, page_url="https://shop.kz/?utm_source=instagram&utm_campaign=spring"
        )
    ).json()["lead_id"]
    await post_lead(ingest, key, email=email, utm={"source": "google"})
    lead = (await ingest.get(f"/v1/leads/{lead_id}", headers=ADMIN)).json()
    assert lead["attributes"]["utm"] == {"source": "instagram", "campaign": "spring"}
    assert lead["attributes"]["campaign"] == "spring"
    assert lead["history"][-1]["properties"]["utm"] == {"source": "google"}


async def test_concurrent_first_submissions_of_one_person_make_one_lead(ingest: httpx.AsyncClient) -> None:
    key = (await create_source(ingest))["key"]
    email = unique_email()
    responses = await asyncio.gather(
        *(post_lead(ingest, key, email=email, custom={"n": i}) for i in range(20))
    )
    assert {r.status_code for r in responses} == {202}
    assert len({r.json()["lead_id"] for r in responses}) == 1
    assert sorted(r.json()["status"] for r in responses).count("accepted") == 1
    assert await count_leads(ingest, email) == 1


async def test_batch_with_the_same_person_twice_makes_one_lead(ingest: httpx.AsyncClient) -> None:
    key = (await create_source(ingest))["key"]
    email = unique_email()
    body = {"leads": [{"email": email, "first_name": "Arman"}, {"email": email, "company": "Kaspi"}]}
    response = await ingest.post("/v1/leads:batch", json=body, headers={"X-Source-Key": key})
    results = response.json()["results"]
    assert [r["outcome"] for r in results] == ["accepted", "merged"]
    assert results[0]["lead_id"] == results[1]["lead_id"]
    lead = (await ingest.get(f"/v1/leads/{results[0]['lead_id']}", headers=ADMIN)).json()
    assert lead["attributes"]["first_name"] == "Arman" and lead["attributes"]["company"] == "Kaspi"


async def test_a_key_in_a_web_page_cannot_rewrite_a_known_person(ingest: httpx.AsyncClient) -> None:
    """Anyone can post a known email with a capture-only key (it sits in a landing page) or
    a public form: empty fields are filled, nothing is overwritten, no phone is added (the
    attacker's number goes on the activity, where a rep can see it)."""
    server = await create_source(ingest)  # scope history: a CRM
    page = await create_source(ingest, scope="capture")
    email = f"known-{uuid.uuid4().hex[:8]}@example.kz"
    lead_id = (await post_lead(ingest, server["key"], email=email, company="Kaspi", city="Almaty")).json()[
        "lead_id"
    ]
    attack = {"email": email, "company": "Attacker LLP", "job_title": "CEO", "phone": "+77015559999"}
    answered = await post_lead(ingest, page["key"], **attack)
    stranger = await post_lead(ingest, page["key"], email=f"new-{uuid.uuid4().hex[:8]}@example.kz")
    assert answered.json()["status"] == stranger.json()["status"] == "accepted", "known and new alike"
    form = await ingest.post(
        f"/v1/forms/{page['id']}",
        data={"email": email, "city": "Baku"},
        headers={"accept": "application/json"},
    )
    assert form.status_code == 202, form.text
    lead = (await ingest.get(f"/v1/leads/{lead_id}", headers=ADMIN)).json()
    assert lead["attributes"]["company"] == "Kaspi" and lead["attributes"]["city"] == "Almaty"
    assert lead["attributes"]["job_title"] == "CEO", "an empty field is filled"
    assert lead["phone"] is None, "no contact point from an unvouched post"
    assert any(h["properties"].get("phone") == "+77015559999" for h in lead["history"])
    vouched = await post_lead(ingest, server["key"], email=email, company="Kaspi Bank", phone="+77015550000")
    assert vouched.status_code == 202
    lead = (await ingest.get(f"/v1/leads/{lead_id}", headers=ADMIN)).json()
    assert lead["attributes"]["company"] == "Kaspi Bank" and lead["phone"] == "+77015550000"


async def test_a_capture_only_key_acts_only_on_its_own_leads_and_cannot_tell_who_is_known(
    ingest: httpx.AsyncClient,
) -> None:
    """A key in a web page is answered alike for another source's lead and its own (a 403
    told it the person was known), and what it sends about another's lead is not recorded:
    by lead id, by email, or through a chatbot's contact."""
    server, page = await create_source(ingest), await create_source(ingest, scope="capture")
    assert page["scope"] == "capture" and server["scope"] == "history"
    their_email = f"t-{uuid.uuid4().hex[:8]}@example.kz"
    theirs = (await post_lead(ingest, server["key"], email=their_email)).json()
    mine = (await post_lead(ingest, page["key"], email=f"m-{uuid.uuid4().hex[:8]}@example.kz")).json()
    key = {"X-Source-Key": page["key"]}
    before = (await ingest.get(f"/v1/leads/{theirs['lead_id']}", headers=ADMIN)).json()["history"]
    for path, body in (
        ("/v1/activities", {"type": "demo_request"}),
        ("/v1/consent", {"granted": False, "purpose": "marketing"}),
    ):
        foreign = await ingest.post(path, json={**body, "lead_id": theirs["lead_id"]}, headers=key)
        own = await ingest.post(path, json={**body, "lead_id": mine["lead_id"]}, headers=key)
        assert foreign.status_code == own.status_code == 202, (foreign.text, own.text)
        assert foreign.json().keys() == own.json().keys()
    by_email = await ingest.post(
        "/v1/activities", json={"type": "demo_request", "email": their_email}, headers=key
    )
    assert by_email.status_code == 202, by_email.text
    chat = await create_source(ingest, channel="live_chat", scope="capture")
    message = {"conversation_id": uuid.uuid4().hex, "contact": {"email": their_email}}
    message["intent"] = "demo_request"
    chatted = await ingest.post(
        f"/v1/chatbots/{chat['id']}/messages", json=message, headers={"X-Source-Key": chat["key"]}
    )
    assert chatted.status_code == 202, chatted.text
    after = (await ingest.get(f"/v1/leads/{theirs['lead_id']}", headers=ADMIN)).json()["history"]
    assert after == before
    own_history = (await ingest.get(f"/v1/leads/{mine['lead_id']}", headers=ADMIN)).json()["history"]
    assert {h["type"] for h in own_history} >= {"demo_request", "withdrawn"}
    outcome = {"lead_id": mine["lead_id"], "type": "won", "amount": 100}
    refused = await ingest.post("/v1/outcomes", json=outcome, headers=key)
    assert refused.status_code == 403 and "history" in refused.json()["detail"], refused.text
    allowed = await ingest.post("/v1/outcomes", json=outcome, headers={"X-Source-Key": server["key"]})
    assert allowed.status_code == 202, allowed.text


BROWSING = {"timeframe": "later", "message": "just browsing"}
BUYING = {"timeframe": "now", "message": "please call me back today, want to buy"}


async def test_a_known_persons_new_intent_goes_on_the_activity_and_the_profile_stays(
    ingest: httpx.AsyncClient, servers: Servers
) -> None:
    """A key in a web page may not overwrite a known person, but what the repeat says this
    time (timeframe, message, need) is kept on its activity, sealed as the rest of it, for
    scoring to read: by the JSON route and by the HTML form alike."""
    page = await create_source(ingest, scope="capture")
    email = unique_email()
    lead_id = (await post_lead(ingest, page["key"], email=email, **BROWSING)).json()["lead_id"]
    again = await post_lead(ingest, page["key"], email=email, **BUYING)
    assert again.json() == {"lead_id": lead_id, "status": "accepted"}
    form = await ingest.post(
        f"/v1/forms/{page['id']}",
        data={"email": email, "timeframe": "this_week", "need": "a quote for 40 seats"},
        headers={"accept": "application/json"},
    )
    assert form.status_code == 202, form.text

    lead = (await ingest.get(f"/v1/leads/{lead_id}", headers=ADMIN)).json()
    assert {k: lead["attributes"].get(k) for k in ("timeframe", "message", "need")} == {
        **BROWSING,
        "need": "a quote for 40 seats",  # empty, so filled
    }
    said = [{k: h["properties"].get(k) for k in ("timeframe", "message", "need")} for h in lead["history"]]
    assert said == [
        {**BUYING, "need": None},
        {"timeframe": "this_week", "message": None, "need": "a quote for 40 seats"},
    ]
    events = await opened_events_of(ingest, servers.bootstrap, lead_id, lambda es: len(es) >= 4)
    repeat = next(e for e in events if e.type == "activity.recorded")
    assert repeat.data["activity_type"] == "form_submitted"
    assert {k: repeat.data["properties"][k] for k in BUYING} == BUYING
    raw = await events_of(servers.bootstrap, lead_id, lambda es: len(es) >= 4)
    sealed = next(e for e in raw if e.type == "activity.recorded")
    assert list(sealed.data["properties"]) == ["sealed"] and "call me back" not in sealed.model_dump_json()


async def test_a_key_in_a_web_page_says_nothing_new_about_another_sources_lead_and_a_server_overwrites(
    ingest: httpx.AsyncClient,
) -> None:
    """As for its activities (`may_act_on`): another source's lead is not made hot by a key in
    a web page; the repeat is still recorded as before. A server's key overwrites the profile."""
    server, page = await create_source(ingest), await create_source(ingest, scope="capture")
    email = unique_email()
    lead_id = (await post_lead(ingest, server["key"], email=email, **BROWSING)).json()["lead_id"]
    await post_lead(ingest, page["key"], email=email, **BUYING)
    lead = (await ingest.get(f"/v1/leads/{lead_id}", headers=ADMIN)).json()
    assert lead["history"][-1]["type"] == "form_submitted"
    assert not {"timeframe", "message"} & lead["history"][-1]["properties"].keys()
    assert {k: lead["attributes"][k] for k in BROWSING} == BROWSING
    await post_lead(ingest, server["key"], email=email, **BUYING)
    lead = (await ingest.get(f"/v1/leads/{lead_id}", headers=ADMIN)).json()
    assert {k: lead["attributes"][k] for k in BUYING} == BUYING
    assert {k: lead["history"][-1]["properties"][k] for k in BUYING} == BUYING
