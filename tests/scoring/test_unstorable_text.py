"""Rules and query parameters whose text PostgreSQL cannot store are a 422 naming where."""

from collections.abc import AsyncIterator

import httpx
import pytest
import yaml

from services.scoring.app import create_app
from services.scoring.config import ScoringSettings
from services.scoring.rules import default_rules_text
from tests.conftest import ADMIN, Servers, running
from tests.helpers import refused_fields

NUL = "a\u0000b"


@pytest.fixture(scope="module")
async def scoring(servers: Servers) -> AsyncIterator[httpx.AsyncClient]:
    async with running(create_app(servers.settings(ScoringSettings))) as client:
        yield client


async def test_rules_with_a_nul_value_are_refused_naming_its_path(scoring: httpx.AsyncClient) -> None:
    rules = yaml.safe_load(default_rules_text())
    rules["fit"]["industry"]["values"].append(NUL)
    response = await scoring.put("/v1/rules", json=rules, headers=ADMIN)
    index = len(rules["fit"]["industry"]["values"]) - 1
    assert refused_fields(response) == [f"fit.industry.values.{index}"]
    simulated = await scoring.post("/v1/rules:simulate", json=rules, headers=ADMIN)
    assert refused_fields(simulated) == [f"fit.industry.values.{index}"]


async def test_rules_text_with_a_nul_in_a_comment_is_refused(scoring: httpx.AsyncClient) -> None:
    text = "# \u0000\n" + default_rules_text()
    headers = {**ADMIN, "content-type": "application/yaml"}
    assert refused_fields(await scoring.put("/v1/rules", content=text.encode(), headers=headers)) == ["body"]


@pytest.mark.parametrize("param", ["stage", "cursor"])
async def test_a_query_parameter_with_a_nul_is_refused(scoring: httpx.AsyncClient, param: str) -> None:
    response = await scoring.get("/v1/leads", params={param: NUL}, headers=ADMIN)
    assert param in refused_fields(response)
