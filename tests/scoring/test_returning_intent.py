"""A returning person's new intent, through ingest and scoring as they run: a key in a web page
does not overwrite the person, yet "call me back today, want to buy" makes the lead hot."""

import uuid
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from services.ingest.app import create_app as create_ingest
from services.ingest.config import IngestSettings
from services.scoring.app import create_app as create_scoring
from services.scoring.config import ScoringSettings
from shared import topics
from shared.personal import is_sealed, opened
from tests.conftest import ADMIN, Servers, eventually, running, serving
from tests.helpers import create_source, events_of, lead_key, post_lead
from tests.scoring.test_scoring_flow import not_understood_count

BROWSING = {"timeframe": "later", "message": "just browsing"}
BUYING = {"timeframe": "now", "message": "please call me back today, want to buy"}


@pytest.fixture(scope="module")
async def ingest(servers: Servers) -> AsyncIterator[httpx.AsyncClient]:
    app = create_ingest(servers.settings(IngestSettings))
    async with serving(app) as url, httpx.AsyncClient(base_url=url, timeout=10) as client:
        yield client


@pytest.fixture(scope="module")
async def scoring(servers: Servers, ingest: httpx.AsyncClient) -> AsyncIterator[httpx.AsyncClient]:
    settings = servers.settings(ScoringSettings, ingest_url=str(ingest.base_url))
    async with running(create_scoring(settings)) as client:
        yield client


async def standing_when(
    scoring: httpx.AsyncClient, lead_id: str, temperature: str, timeout: float = 20
) -> dict[str, Any]:
    async def found() -> dict[str, Any] | None:
        response = await scoring.get(f"/v1/leads/{lead_id}", headers=ADMIN)
        body = response.json() if response.status_code == 200 else None
        return body if body and body["temperature"] == temperature else None

    standing: dict[str, Any] = await eventually(found, timeout=timeout)
    return standing


async def test_a_returning_person_asking_to_buy_today_turns_hot_by_the_api_and_the_form(
    ingest: httpx.AsyncClient, scoring: httpx.AsyncClient
) -> None:
    page = await create_source(ingest, scope="capture")
    by_api, by_form = (f"back-{uuid.uuid4().hex[:8]}@example.kz" for _ in range(2))
    first = [
        (await post_lead(ingest, page["key"], email=e, **BROWSING)).json()["lead_id"]
        for e in (by_api, by_form)
    ]
    for lead_id in first:
        cold = await standing_when(scoring, lead_id, "cold")
        assert "intent.timeframe.hot" not in {hit["rule"] for hit in cold["breakdown"]}

    again = await post_lead(ingest, page["key"], email=by_api, **BUYING)
    assert again.json() == {"lead_id": first[0], "status": "accepted"}
    form = await ingest.post(
        f"/v1/forms/{page['id']}", data={"email": by_form, **BUYING}, headers={"accept": "application/json"}
    )
    assert form.status_code == 202, form.text

    for lead_id in first:
        hot = await standing_when(scoring, lead_id, "hot")
        reasons = {hit["rule"]: hit["reason"] for hit in hot["breakdown"]}
        assert reasons["intent.timeframe.hot"] == "wants it now («now»)"
        assert reasons["intent.request.callback_request"].startswith("asked: callback request «call me back»")
        assert hot["stage"] == "sql"  # straight to sales: a rep gets it
        stored = (await ingest.get(f"/v1/leads/{lead_id}", headers=ADMIN)).json()["attributes"]
        assert {k: stored[k] for k in BROWSING} == BROWSING, "the profile is not overwritten"


async def test_the_leads_detail_says_what_the_person_said_last(
    ingest: httpx.AsyncClient, scoring: httpx.AsyncClient
) -> None:
    """As the rep's hot-lead message does: the profile's words, then a repeat's, which the
    profile does not take."""
    page = await create_source(ingest, scope="capture")
    email = f"said-{uuid.uuid4().hex[:8]}@example.kz"
    lead_id = (await post_lead(ingest, page["key"], email=email, **BROWSING)).json()["lead_id"]
    cold = await standing_when(scoring, lead_id, "cold")
    assert {k: cold["said"][k] for k in ("timeframe", "message", "need")} == {**BROWSING, "need": None}
    await post_lead(ingest, page["key"], email=email, **BUYING)
    hot = await standing_when(scoring, lead_id, "hot")
    assert {k: hot["said"][k] for k in ("timeframe", "message", "need")} == {**BUYING, "need": None}
    assert hot["said"]["at"] > cold["said"]["at"]
    silent = (await post_lead(ingest, page["key"], email=f"quiet-{uuid.uuid4().hex[:8]}@example.kz")).json()
    assert (await standing_when(scoring, silent["lead_id"], "cold"))["said"] is None


async def test_a_repeats_timeframe_nobody_understood_is_counted(
    ingest: httpx.AsyncClient, scoring: httpx.AsyncClient
) -> None:
    page = await create_source(ingest, scope="capture")
    email = f"stars-{uuid.uuid4().hex[:8]}@example.kz"
    lead_id = (await post_lead(ingest, page["key"], email=email, language="ru", timeframe="later")).json()[
        "lead_id"
    ]
    await standing_when(scoring, lead_id, "cold")
    before = not_understood_count((await scoring.get("/metrics")).text, "ru")
    await post_lead(ingest, page["key"], email=email, timeframe="когда звёзды сойдутся")

    async def shown() -> str | None:
        breakdown = (await scoring.get(f"/v1/leads/{lead_id}", headers=ADMIN)).json()["breakdown"]
        return next((h["reason"] for h in breakdown if h["rule"] == "intent.timeframe.not_understood"), None)

    assert await eventually(shown, timeout=20) == "timeframe not understood: «когда звёзды сойдутся»"
    assert not_understood_count((await scoring.get("/metrics")).text, "ru") == before + 1


async def test_the_classification_says_the_repeats_words_sealed_and_erased_with_the_lead(
    servers: Servers, ingest: httpx.AsyncClient, scoring: httpx.AsyncClient
) -> None:
    """`said` is the person's words: on the topic it is sealed with the lead's key, as `lead`
    is, and once the lead is erased (its key deleted) no copy of it opens any more."""
    page = await create_source(ingest, scope="capture")
    email = f"said-{uuid.uuid4().hex[:8]}@example.kz"
    lead_id = (await post_lead(ingest, page["key"], email=email, **BROWSING)).json()["lead_id"]
    await standing_when(scoring, lead_id, "cold")
    await post_lead(ingest, page["key"], email=email, **BUYING)
    await standing_when(scoring, lead_id, "hot")

    classified = await events_of(
        servers.bootstrap,
        lead_id,
        until=lambda es: any(e.data.get("temperature") == "hot" for e in es),
        topic=topics.LEAD_CLASSIFICATIONS,
    )
    hot = next(e for e in classified if e.data["temperature"] == "hot")
    raw = hot.model_dump_json()
    assert "said" not in hot.data and is_sealed(hot)
    assert all(words not in raw for words in ("call me back", "want to buy", "just browsing"))
    seal_key = await lead_key(ingest, lead_id)
    assert seal_key is not None
    data = opened(hot, seal_key).data
    assert {k: data["said"][k] for k in BUYING} == BUYING and data["said"]["at"]
    assert {k: data["lead"][k] for k in BROWSING} == BROWSING  # the profile, as it was

    assert (await ingest.delete(f"/v1/leads/{lead_id}", headers=ADMIN)).status_code == 204
    assert await lead_key(ingest, lead_id) is None


async def test_an_erased_leads_standing_is_told_gone_not_yet_to_come(
    ingest: httpx.AsyncClient, scoring: httpx.AsyncClient
) -> None:
    """Asked for an erased lead, scoring said "No classification for this lead yet" (404): an
    integrator waited for one. It is a 410, as ingest answers; a lead never seen is still a 404."""
    page = await create_source(ingest, scope="capture")
    email = f"gone-{uuid.uuid4().hex[:8]}@example.kz"
    lead_id = (await post_lead(ingest, page["key"], email=email, **BROWSING)).json()["lead_id"]
    await standing_when(scoring, lead_id, "cold")
    assert (await ingest.delete(f"/v1/leads/{lead_id}", headers=ADMIN)).status_code == 204

    async def told() -> tuple[int, str] | None:
        answer = await scoring.get(f"/v1/leads/{lead_id}", headers=ADMIN)
        return (answer.status_code, answer.json()["title"]) if answer.status_code != 200 else None

    assert await eventually(told, timeout=20) == (410, "Lead erased at the person's request")
    unknown = await scoring.get(f"/v1/leads/{uuid.uuid4()}", headers=ADMIN)
    assert (unknown.status_code, unknown.json()["title"]) == (404, "No classification for this lead yet")
