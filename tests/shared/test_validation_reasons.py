"""A 422's reason for a rule a validator checks says the rule, not pydantic's "Value error, " in
front of it ("Value error, is not an IANA time zone name", found by an outside review), on
every service at once: in query parameters, bodies, and the fields of a lead ingest reads
itself (a batch, a form, an import); pydantic's other messages stay as they are."""

import uuid
from collections.abc import AsyncIterator

import httpx
import pytest

from services.ingest.app import create_app as ingest_app
from services.ingest.config import IngestSettings
from services.metrics.app import create_app as metrics_app
from services.metrics.config import MetricsSettings
from tests.conftest import ADMIN, Servers, running
from tests.helpers import create_source, post_lead


@pytest.fixture(scope="module")
async def metrics(servers: Servers) -> AsyncIterator[httpx.AsyncClient]:
    async with running(metrics_app(servers.settings(MetricsSettings))) as client:
        yield client


@pytest.fixture(scope="module")
async def ingest(servers: Servers) -> AsyncIterator[httpx.AsyncClient]:
    async with running(ingest_app(servers.settings(IngestSettings))) as client:
        yield client


def errors(response: httpx.Response) -> list[tuple[str, str, str]]:
    assert response.status_code == 422, response.text
    assert response.headers["content-type"] == "application/problem+json"
    return [(e["field"], e["reason"], e["type"]) for e in response.json()["errors"]]


async def test_a_query_parameters_validator_is_quoted_in_its_own_words(metrics: httpx.AsyncClient) -> None:
    """`from` quotes the datetime parser's words, through its validator, without the prefix."""
    params = {"from": "2026-02-30", "max_groups": "0"}
    no_such_day = "Input should be a valid datetime or date, day value is outside expected range"
    assert errors(await metrics.get("/v1/funnel", params=params)) == [
        ("from", no_such_day, "value_error"),
        ("max_groups", "Input should be greater than or equal to 1", "greater_than_equal"),
    ]


async def test_a_bodys_validator_is_quoted_in_its_own_words(metrics: httpx.AsyncClient) -> None:
    spend = {"period_start": "2033-04-30", "period_end": "2033-04-01", "category": "marketing", "amount": "1"}
    response = await metrics.post("/v1/spend", json=spend, headers=ADMIN)
    assert errors(response) == [("period_end", "period_end is before period_start", "value_error")]
    ages = {**spend, "period_start": "0001-01-01", "period_end": "9998-12-31"}
    longest = "a spend entry covers at most 3660 days (ten years): enter a longer one year by year"
    assert errors(await metrics.post("/v1/spend", json=ages, headers=ADMIN)) == [
        ("period_end", longest, "value_error")
    ]
    decade = {**spend, "period_start": "2020-01-01", "period_end": "2030-01-07"}  # 3,660 days
    assert (await metrics.post("/v1/spend", json=decade, headers=ADMIN)).status_code == 201


async def test_a_lead_field_ingest_checks_itself_is_refused_in_its_validators_words(
    ingest: httpx.AsyncClient,
) -> None:
    key = (await create_source(ingest))["key"]
    email = f"v-{uuid.uuid4().hex[:8]}@example.kz"
    response = await post_lead(ingest, key, email=email, birthday="2999-01-01", timezone="Mars/Olympus")
    assert sorted(errors(response)) == [
        ("birthday", "a birthday cannot be in the future", "value_error"),
        ("timezone", "is not an IANA time zone name (such as Asia/Almaty)", "value_error"),
    ]


@pytest.mark.parametrize("margin", ["nan", "inf", "-inf"])
async def test_a_margin_that_is_no_number_is_refused_as_such(metrics: httpx.AsyncClient, margin: str) -> None:
    """As a body's numbers are (README: "Input should be a finite number"); NaN read "Input should
    be less than or equal to 1", found by an outside review."""
    finite = ("margin", "Input should be a finite number", "finite_number")
    period = {"from": "2026-01-01", "to": "2026-02-01"}
    for path, params in (("/v1/ltv", {}), ("/v1/cac", period)):
        assert errors(await metrics.get(path, params={**params, "margin": margin})) == [finite], path
