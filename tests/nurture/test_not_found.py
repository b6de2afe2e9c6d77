"""An id nurture does not know, on every admin route that takes one: a 404 problem+json that
says what was not found, and nothing changed."""

import uuid
from collections.abc import AsyncIterator

import httpx
import pytest

from services.nurture.app import create_app
from services.nurture.config import NurtureSettings
from tests.conftest import ADMIN, Servers, running

UNKNOWN = uuid.uuid4()
SINCE = {"since": "2026-01-01T00:00:00Z"}


@pytest.fixture(scope="module")
async def nurture(servers: Servers) -> AsyncIterator[httpx.AsyncClient]:
    async with running(create_app(servers.settings(NurtureSettings, touches_enabled=False))) as client:
        yield client


@pytest.mark.parametrize(
    ("method", "path", "body", "title"),
    [
        ("PATCH", f"/v1/reps/{UNKNOWN}", {"active": False}, "No such rep"),
        ("PATCH", f"/v1/webhooks/{UNKNOWN}", {"active": False}, "No such webhook endpoint"),
        ("POST", f"/v1/webhooks/{UNKNOWN}/rotate-secret", {}, "No such webhook endpoint"),
        ("GET", f"/v1/webhooks/{UNKNOWN}/deliveries", None, "No such webhook endpoint"),
        ("POST", f"/v1/webhooks/{UNKNOWN}/redeliver", SINCE, "No such webhook endpoint"),
        ("POST", f"/v1/deliveries/{UNKNOWN}/redeliver", None, "No such delivery"),
    ],
)
async def test_an_unknown_id_is_a_404_saying_what_is_missing(
    nurture: httpx.AsyncClient, method: str, path: str, body: object, title: str
) -> None:
    answer = await nurture.request(method, path, json=body, headers=ADMIN)
    assert answer.status_code == 404, answer.text
    assert answer.headers["content-type"] == "application/problem+json"
    assert answer.json()["title"] == title


async def test_a_rotated_secret_signs_beside_the_old_one_for_the_overlap(nurture: httpx.AsyncClient) -> None:
    created = await nurture.post(
        "/v1/webhooks", json={"url": "http://127.0.0.1:9/hooks", "events": ["lead.hot"]}, headers=ADMIN
    )
    assert created.status_code == 201, created.text
    endpoint = created.json()
    rotated = await nurture.post(
        f"/v1/webhooks/{endpoint['id']}/rotate-secret", json={"overlap_hours": 2}, headers=ADMIN
    )
    assert rotated.status_code == 200, rotated.text
    assert rotated.json()["secret"].startswith("whsec_") and rotated.json()["secret"] != endpoint["secret"]
    assert rotated.json()["previous_secret_until"] is not None
