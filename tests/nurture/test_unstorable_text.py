"""Text PostgreSQL cannot store is a 422 naming the field on every nurture route that takes
text: reps, subscriptions, playbooks, query parameters. Dates follow the shared rule."""

from collections.abc import AsyncIterator

import httpx
import pytest

from services.nurture.app import create_app
from services.nurture.config import NurtureSettings
from services.nurture.playbooks import default_playbooks_text
from tests.conftest import ADMIN, Servers, running
from tests.helpers import refused_fields

NUL = "a\u0000b"
HOOK = "http://127.0.0.1:9/hook"


@pytest.fixture(scope="module")
async def nurture(servers: Servers) -> AsyncIterator[httpx.AsyncClient]:
    async with running(create_app(servers.settings(NurtureSettings, touches_enabled=False))) as client:
        yield client


@pytest.mark.parametrize(
    ("rep", "field"),
    [({"name": NUL}, "name"), ({"name": "Dauren", "territories": ["KZ", NUL]}, "territories.1")],
)
async def test_a_rep_with_a_nul_is_refused(
    nurture: httpx.AsyncClient, rep: dict[str, object], field: str
) -> None:
    response = await nurture.post("/v1/reps", json={"webhook_url": HOOK, **rep}, headers=ADMIN)
    assert refused_fields(response) == [field]


async def test_a_subscription_description_with_a_nul_is_refused(nurture: httpx.AsyncClient) -> None:
    body = {"url": HOOK, "events": ["lead.hot"], "description": NUL}
    assert refused_fields(await nurture.post("/v1/webhooks", json=body, headers=ADMIN)) == ["description"]


async def test_playbooks_with_a_nul_are_refused_where_it_is(nurture: httpx.AsyncClient) -> None:
    with_nul = default_playbooks_text().replace("playbooks:", "# note \u0000\nplaybooks:", 1)
    headers = {**ADMIN, "content-type": "application/yaml"}
    response = await nurture.put("/v1/playbooks", content=with_nul.encode(), headers=headers)
    assert refused_fields(response) == ["body"]


async def test_a_redelivery_range_takes_dates(nurture: httpx.AsyncClient) -> None:
    created = await nurture.post("/v1/webhooks", json={"url": HOOK, "events": ["lead.hot"]}, headers=ADMIN)
    endpoint = created.json()["id"]
    for since, until in (("2026-12-01", "2026-12-01"), ("2026-12-01T00:00:00", "2026-12-02T09:00:00+05:00")):
        response = await nurture.post(
            f"/v1/webhooks/{endpoint}/redeliver", json={"since": since, "until": until}, headers=ADMIN
        )
        assert response.status_code == 202, response.text
        assert response.json()["deliveries"] == 0


async def test_a_redelivery_range_that_ends_before_it_starts_is_refused(nurture: httpx.AsyncClient) -> None:
    """It was taken, and answered "0 deliveries", as if nothing had failed then."""
    created = await nurture.post("/v1/webhooks", json={"url": HOOK, "events": ["lead.hot"]}, headers=ADMIN)
    url = f"/v1/webhooks/{created.json()['id']}/redeliver"
    for until in ("2026-01-01", "2026-12-31T00:00:00Z"):
        window = {"since": "2026-12-31", "until": until}
        assert refused_fields(await nurture.post(url, json=window, headers=ADMIN)) == ["until"]


@pytest.mark.parametrize("since", [-1, 0, "20261201"])
async def test_a_redelivery_range_is_not_a_number(nurture: httpx.AsyncClient, since: object) -> None:
    created = await nurture.post("/v1/webhooks", json={"url": HOOK, "events": ["lead.hot"]}, headers=ADMIN)
    url = f"/v1/webhooks/{created.json()['id']}/redeliver"
    assert refused_fields(await nurture.post(url, json={"since": since}, headers=ADMIN)) == ["since"]
