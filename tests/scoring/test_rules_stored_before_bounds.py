"""A rules version stored before a release bounded a setting it breaks (cool_after_days of 1e9,
accepted until the bounds came) is passed over: leads are decided under the newest version that
fits, the rules read, and a new version replaces it through the API. Read as it was, it failed
every lead and every read of the rules, and PUT /v1/rules could not replace it."""

import json
import logging
import uuid
from collections.abc import AsyncIterator

import httpx
import pytest
import yaml
from sqlalchemy import text

from services.scoring.app import create_app
from services.scoring.config import ScoringSettings
from services.scoring.rules import default_rules_text
from shared import topics
from shared.kafka import Publisher
from tests.conftest import ADMIN, Servers, eventually, running
from tests.helpers import lead_captured


@pytest.fixture(scope="module")
async def scoring(servers: Servers) -> AsyncIterator[httpx.AsyncClient]:
    async with running(create_app(servers.settings(ScoringSettings))) as client:
        yield client


async def test_a_stored_version_out_of_bounds_is_passed_over_until_replaced(
    scoring: httpx.AsyncClient, servers: Servers, caplog: pytest.LogCaptureFixture
) -> None:
    assert (await scoring.get("/v1/rules")).json()["version"] == 1
    unbounded = yaml.safe_load(default_rules_text())
    unbounded["temperature"]["cool_after_days"] = {"hot": 1e9, "warm": 1e9}
    app = scoring._transport.app  # type: ignore[attr-defined]
    async with app.state.runtime.db.transaction() as session:
        await session.execute(
            text(
                "INSERT INTO rules_versions (version, rules, source)"
                " VALUES (2, :rules ::jsonb, 'before the bounds')"
            ),
            {"rules": json.dumps(unbounded)},
        )
    app.state.rulebook.forget()  # read the versions again now, not within the second

    with caplog.at_level(logging.ERROR, logger="shared.documents"):
        read = await scoring.get("/v1/rules")
    assert read.status_code == 200, read.text
    assert read.json()["version"] == 1
    assert (
        "rules_versions version 2 breaks the current bounds (temperature.cool_after_days.hot" in caplog.text
    )

    lead = lead_captured(timeframe="now")
    publisher = Publisher(servers.bootstrap, "test")
    try:
        await publisher.publish([(topics.LEAD_EVENTS, str(lead.lead_id).encode(), lead.to_bytes())])
    finally:
        await publisher.stop()
    decided = await eventually(lambda: _decided(scoring, lead.lead_id), timeout=20)
    assert decided["temperature"] == "hot" and decided["rules_version"] == 1, decided

    replaced = await scoring.put("/v1/rules", json=yaml.safe_load(default_rules_text()), headers=ADMIN)
    assert replaced.status_code == 201, replaced.text
    assert replaced.json()["version"] == 3


async def _decided(client: httpx.AsyncClient, lead_id: uuid.UUID) -> dict | None:  # type: ignore[type-arg]
    response = await client.get(f"/v1/leads/{lead_id}")
    return dict(response.json()) if response.status_code == 200 else None
