"""GET /v1/reps and /v1/webhooks a page at a time: every item once, oldest first, the next
page named in a `Link` header only while more follow; a cursor the API did not give out is a
422 naming it."""

import uuid
from collections.abc import AsyncIterator

import httpx
import pytest

from services.nurture.app import create_app
from services.nurture.config import NurtureSettings
from tests.conftest import ADMIN, Servers, running
from tests.helpers import every_page


@pytest.fixture(scope="module")
async def nurture(servers: Servers) -> AsyncIterator[httpx.AsyncClient]:
    async with running(create_app(servers.settings(NurtureSettings))) as client:
        yield client


async def created(nurture: httpx.AsyncClient, path: str, body: dict[str, object]) -> str:
    answer = await nurture.post(path, json=body, headers=ADMIN)
    assert answer.status_code == 201, answer.text
    return str(answer.json()["id"])


async def test_reps_come_a_page_at_a_time_each_once_oldest_first(nurture: httpx.AsyncClient) -> None:
    mark = uuid.uuid4().hex[:8]
    rep = {"webhook_url": "https://crm.example.kz/hook"}
    mine = [await created(nurture, "/v1/reps", rep | {"name": f"{mark} {n}"}) for n in range(5)]
    whole = (await nurture.get("/v1/reps", headers=ADMIN)).json()
    seen, pages = await every_page(nurture, "/v1/reps", limit=2)
    assert [r["id"] for r in seen] == [r["id"] for r in whole], "the pages, end to end, are the list"
    assert len({r["id"] for r in seen}) == len(seen) >= 5
    assert [r["id"] for r in seen if r["name"].startswith(mark)] == mine
    assert pages == -(-len(seen) // 2), "a next link only while more follow"


async def test_subscriptions_come_a_page_at_a_time(nurture: httpx.AsyncClient) -> None:
    mine = [
        await created(
            nurture, "/v1/webhooks", {"url": f"https://hooks.example.kz/{n}", "events": ["lead.hot"]}
        )
        for n in range(3)
    ]
    seen, pages = await every_page(nurture, "/v1/webhooks", limit=1)
    ids = [e["id"] for e in seen]
    assert len(set(ids)) == len(ids) == pages
    assert [i for i in ids if i in mine] == mine


async def test_a_cursor_not_given_out_is_refused(nurture: httpx.AsyncClient) -> None:
    for path in ("/v1/reps", "/v1/webhooks", f"/v1/leads/{uuid.uuid4()}/touches"):
        answer = await nurture.get(path, params={"cursor": "bm90LWEtY3Vyc29y"}, headers=ADMIN)
        assert answer.status_code == 422, answer.text
        assert answer.json()["errors"][0]["field"] == "cursor"
        too_many = await nurture.get(path, params={"limit": 5000}, headers=ADMIN)
        assert too_many.status_code == 422
