"""Rules documents the model cannot use are a 422 naming where, on PUT /v1/rules and on
rules:simulate alike; never a 500, and never a version that dead-letters every lead."""

import json
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
import yaml

from services.scoring.app import create_app
from services.scoring.config import ScoringSettings
from services.scoring.rules import MAX_DAYS, default_rules_text
from shared import topics
from shared.kafka import Publisher
from shared.times import LATEST
from tests.conftest import ADMIN, Servers, eventually, running
from tests.helpers import alias_bomb, lead_captured, refused_fields

JSON = {**ADMIN, "content-type": "application/json"}


@pytest.fixture(scope="module")
async def scoring(servers: Servers) -> AsyncIterator[httpx.AsyncClient]:
    async with running(create_app(servers.settings(ScoringSettings))) as client:
        yield client


def rules_with(section: str, name: str, value: Any) -> str:
    """The default rules with one setting changed, as JSON (NaN and Infinity as Python writes them)."""
    rules = yaml.safe_load(default_rules_text())
    rules[section][name] = value
    return json.dumps(rules)


@pytest.mark.parametrize(
    ("section", "name", "value", "fields"),
    [
        ("temperature", "cool_after_days", {"hot": 1e9, "warm": 1e9}, [".hot", ".warm"]),
        ("engagement", "review_every_hours", 1e308, [""]),
        ("engagement", "review_every_hours", float("inf"), [""]),
        ("engagement", "half_life_days", float("nan"), [""]),
    ],
)
@pytest.mark.parametrize("route", ["PUT /v1/rules", "POST /v1/rules:simulate"])
async def test_a_span_the_model_cannot_add_to_a_date_is_refused(
    scoring: httpx.AsyncClient, route: str, section: str, name: str, value: Any, fields: list[str]
) -> None:
    method, url = route.split()
    response = await scoring.request(method, url, content=rules_with(section, name, value), headers=JSON)
    assert refused_fields(response) == [f"{section}.{name}{field}" for field in fields]
    assert (await scoring.get("/v1/rules")).json()["version"] == 1


async def test_simulate_with_the_longest_spans_decides_leads_of_any_date(
    servers: Servers, scoring: httpx.AsyncClient
) -> None:
    dates = [datetime.now(UTC), datetime(1, 1, 2, tzinfo=UTC), datetime(9998, 12, 31, tzinfo=UTC), LATEST]
    leads = [lead_captured(captured_at=at, timeframe="now") for at in dates]
    publisher = Publisher(servers.bootstrap, "test")
    try:
        await publisher.publish([(topics.LEAD_EVENTS, str(e.lead_id).encode(), e.to_bytes()) for e in leads])
    finally:
        await publisher.stop()
    for event in leads:
        await eventually(lambda e=event: _scored(scoring, e.lead_id), timeout=20)

    rules = yaml.safe_load(default_rules_text())
    rules["temperature"]["cool_after_days"] = {"hot": MAX_DAYS, "warm": MAX_DAYS}
    rules["engagement"].update(half_life_days=MAX_DAYS, review_every_hours=365 * 24)
    response = await scoring.post("/v1/rules:simulate", json=rules, headers=ADMIN)
    assert response.status_code == 200, response.text
    assert response.json()["leads"] >= len(leads)


async def _scored(client: httpx.AsyncClient, lead_id: uuid.UUID) -> bool:
    return (await client.get(f"/v1/leads/{lead_id}")).status_code == 200


DEEP = "[" * 20000 + "]" * 20000


@pytest.mark.parametrize(
    ("body", "media_type"),
    [
        (DEEP, "application/json"),
        (DEEP, "application/yaml"),
        ('{"fit": ' + DEEP + "}", "application/json"),
        ("fit: " + "[" * 40 + "]" * 40, "application/yaml"),
        ('{"fit": ' + "[" * 40 + "]" * 40 + "}", "application/json"),  # deep, within the parser's stack
    ],
    ids=["json", "yaml", "json section", "yaml 40 levels", "json 40 levels"],
)
@pytest.mark.parametrize("route", ["PUT /v1/rules", "POST /v1/rules:simulate"])
async def test_a_body_nested_too_deeply_is_refused(
    scoring: httpx.AsyncClient, route: str, body: str, media_type: str
) -> None:
    method, url = route.split()
    headers = {**ADMIN, "content-type": media_type}
    response = await scoring.request(method, url, content=body, headers=headers)
    assert refused_fields(response) == ["body"]
    assert response.json()["errors"][0]["reason"].startswith("nested more than 32 levels deep")


@pytest.mark.parametrize("levels", [7, 9])
@pytest.mark.parametrize("route", ["PUT /v1/rules", "POST /v1/rules:simulate"])
async def test_yaml_anchors_and_aliases_are_refused(
    scoring: httpx.AsyncClient, route: str, levels: int
) -> None:
    method, url = route.split()
    headers = {**ADMIN, "content-type": "application/yaml"}
    response = await scoring.request(method, url, content=alias_bomb(levels), headers=headers)
    assert refused_fields(response) == ["body"]
    assert "anchors and aliases" in response.json()["errors"][0]["reason"]
    one_anchor = default_rules_text().replace("  half_life_days: 30", "  half_life_days: &days 30")
    response = await scoring.request(method, url, content=one_anchor, headers=headers)
    assert refused_fields(response) == ["body"]


@pytest.mark.parametrize(
    ("written", "reason"),
    [
        ("  half_life_days: 2026-02-30", "day is out of range for month"),
        ("  half_life_days: 0000-01-01", "year 0 is out of range"),
        ("  half_life_days: " + "1" * 5000, "Exceeds the limit (4300 digits)"),
    ],
    ids=["30 February", "year 0", "5000 digits"],
)
@pytest.mark.parametrize("route", ["PUT /v1/rules", "POST /v1/rules:simulate"])
async def test_a_value_yaml_cannot_read_is_a_422_at_its_line(
    scoring: httpx.AsyncClient, route: str, written: str, reason: str
) -> None:
    method, url = route.split()
    document = default_rules_text()
    line = next(n for n, text in enumerate(document.splitlines(), 1) if text == "  half_life_days: 30")
    body = document.replace("  half_life_days: 30", written)
    headers = {**ADMIN, "content-type": "application/yaml"}
    response = await scoring.request(method, url, content=body, headers=headers)
    assert refused_fields(response) == [f"line {line}, column 19"]
    assert reason in response.json()["errors"][0]["reason"]
