"""A JSON route sent a body of another content type (`curl -d` sends a form's) answers 415
saying to send JSON, on every service, not a 422 blaming a body that was never read as JSON;
a JSON body of the wrong shape is still a 422 naming it."""

from collections.abc import AsyncIterator

import httpx
import pytest

from services.metrics.app import create_app as metrics_app
from services.metrics.config import MetricsSettings
from services.nurture.app import create_app as nurture_app
from services.nurture.config import NurtureSettings
from tests.conftest import ADMIN, Servers, running

FORM = {**ADMIN, "content-type": "application/x-www-form-urlencoded"}


@pytest.fixture(scope="module")
async def nurture(servers: Servers) -> AsyncIterator[httpx.AsyncClient]:
    async with running(nurture_app(servers.settings(NurtureSettings, touches_enabled=False))) as client:
        yield client


@pytest.fixture(scope="module")
async def metrics(servers: Servers) -> AsyncIterator[httpx.AsyncClient]:
    async with running(metrics_app(servers.settings(MetricsSettings))) as client:
        yield client


async def test_a_json_route_sent_a_form_body_says_to_send_json(
    nurture: httpx.AsyncClient, metrics: httpx.AsyncClient
) -> None:
    for client, path, body in (
        (nurture, "/v1/reps", '{"name": "Aigerim", "webhook_url": "http://127.0.0.1:9/hooks"}'),
        (metrics, "/v1/spend", '{"period_start": "2033-01-01", "period_end": "2033-01-31"}'),
    ):
        for headers in (FORM, {**ADMIN, "content-type": "text/plain"}):
            answer = await client.post(path, content=body, headers=headers)
            assert answer.status_code == 415, (path, answer.text)
            assert answer.headers["content-type"] == "application/problem+json"
            assert answer.json()["title"] == "Send the body as application/json"


async def test_a_json_body_of_the_wrong_shape_is_still_a_422_naming_it(nurture: httpx.AsyncClient) -> None:
    answer = await nurture.post("/v1/reps", json=["Aigerim"], headers=ADMIN)
    assert answer.status_code == 422
    assert [e["field"] for e in answer.json()["errors"]] == ["body"]
