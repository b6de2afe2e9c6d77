"""A rules version stored before the rules held a timeframe vocabulary (an older Leadflow's
defaults, which had the words built into the code) reads timeframes with the built-in words:
upgraded, a lead who wants to buy "immediately" or "срочно" is still hot. Read with no words,
such a lead was cold and never reached a rep."""

import json
import uuid
from collections.abc import AsyncIterator
from functools import partial

import httpx
import pytest
import yaml
from sqlalchemy import text

from services.scoring.app import create_app
from services.scoring.config import ScoringSettings
from services.scoring.rules import default_rules_text, parse_rules
from shared import topics
from shared.kafka import Publisher
from tests.conftest import Servers, eventually, running
from tests.helpers import lead_captured


@pytest.fixture(scope="module")
async def scoring(servers: Servers) -> AsyncIterator[httpx.AsyncClient]:
    async with running(create_app(servers.settings(ScoringSettings))) as client:
        yield client


def stored_before_the_vocabulary() -> dict:  # type: ignore[type-arg]
    rules = yaml.safe_load(default_rules_text())
    del rules["timeframes"]
    return dict(rules)


def test_a_version_stating_no_vocabulary_reads_with_the_built_in_words() -> None:
    built_in = parse_rules(default_rules_text()).timeframes
    assert parse_rules(stored_before_the_vocabulary()).timeframes == built_in


async def test_an_upgraded_databases_rules_still_make_a_lead_wanting_it_now_hot(
    scoring: httpx.AsyncClient, servers: Servers
) -> None:
    app = scoring._transport.app  # type: ignore[attr-defined]
    async with app.state.runtime.db.transaction() as session:
        await session.execute(
            text(
                "INSERT INTO rules_versions (version, rules, source)"
                " VALUES (2, :rules ::jsonb, 'stored by an older Leadflow')"
            ),
            {"rules": json.dumps(stored_before_the_vocabulary())},
        )
    app.state.rulebook.forget()  # read the versions again now, not within the second

    leads = [lead_captured(timeframe=said) for said in ("immediately", "срочно")]
    publisher = Publisher(servers.bootstrap, "test")
    try:
        await publisher.publish([(topics.LEAD_EVENTS, str(e.lead_id).encode(), e.to_bytes()) for e in leads])
    finally:
        await publisher.stop()
    for lead in leads:
        decided = await eventually(partial(_decided, scoring, lead.lead_id), timeout=20)
        assert (decided["temperature"], decided["rules_version"]) == ("hot", 2), decided


async def _decided(client: httpx.AsyncClient, lead_id: uuid.UUID) -> dict | None:  # type: ignore[type-arg]
    response = await client.get(f"/v1/leads/{lead_id}")
    return dict(response.json()) if response.status_code == 200 else None
