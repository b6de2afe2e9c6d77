"""GET /v1/spend a page at a time: every entry once, in period order, the next page named in a
`Link` header; a cursor the API did not give out is a 422 naming it."""

import uuid
from collections.abc import AsyncIterator

import asyncpg
import httpx
import pytest

from services.metrics.app import create_app
from services.metrics.config import MetricsSettings
from tests.conftest import ADMIN, Servers, running


@pytest.fixture(scope="module")
async def metrics(servers: Servers) -> AsyncIterator[httpx.AsyncClient]:
    async with running(create_app(servers.settings(MetricsSettings))) as client:
        yield client


async def test_pages_walk_every_entry_once_in_period_order(metrics: httpx.AsyncClient) -> None:
    mark = uuid.uuid4().hex
    days = ["2031-03-01", "2031-01-01", "2031-01-01", "2031-02-01", "2031-01-01"]  # ties on the start
    for day in days:
        entry = {"period_start": day, "period_end": day, "category": "marketing", "amount": "10"}
        answer = await metrics.post(
            "/v1/spend", json=entry | {"currency": "KZT", "note": mark}, headers=ADMIN
        )
        assert answer.status_code == 201, answer.text

    seen, pages, url = [], 0, "/v1/spend?limit=2"
    while url and pages < 1000:  # a cursor that went nowhere would loop
        answer = await metrics.get(url, headers=ADMIN)
        assert answer.status_code == 200, answer.text
        assert len(answer.json()) <= 2
        seen += answer.json()
        pages += 1
        url = answer.links.get("next", {}).get("url", "")
    ids = [e["id"] for e in seen]
    assert len(ids) == len(set(ids)), "no entry twice"
    mine = [e["period_start"] for e in seen if e["note"] == mark]
    assert mine == sorted(days)
    assert pages == -(-len(seen) // 2), "a next link only while more follow"
    starts = [e["period_start"] for e in seen]
    assert starts == sorted(starts)


async def test_a_cursor_not_given_out_is_refused(metrics: httpx.AsyncClient) -> None:
    answer = await metrics.get("/v1/spend", params={"cursor": "bm90LWEtY3Vyc29y"}, headers=ADMIN)
    assert answer.status_code == 422
    assert answer.json()["errors"][0]["field"] == "cursor"
    too_many = await metrics.get("/v1/spend", params={"limit": 5000}, headers=ADMIN)
    assert too_many.status_code == 422


async def test_an_entry_is_corrected_whole_and_deleted_by_the_admin_only(metrics: httpx.AsyncClient) -> None:
    mark = uuid.uuid4().hex
    entry = {
        "period_start": "2033-04-01",
        "period_end": "2033-04-30",
        "category": "marketing",
        "amount": "100",
    }
    created = (await metrics.post("/v1/spend", json=entry | {"note": mark}, headers=ADMIN)).json()
    url = f"/v1/spend/{created['id']}"
    assert created["amount"] == "100.00"  # to the cent, as every later read shows it
    corrected = entry | {"amount": "250.5", "channel": "ad"}  # the note left out: cleared

    assert (await metrics.put(url, json=corrected)).status_code == 403  # the viewer changes nothing
    answer = await metrics.put(url, json=corrected, headers=ADMIN)
    assert answer.status_code == 200, answer.text
    assert (answer.json()["amount"], answer.json()["channel"], answer.json()["note"]) == (
        "250.50",
        "ad",
        None,
    )
    listed = (await metrics.get("/v1/spend?limit=500", headers=ADMIN)).json()
    assert [e["amount"] for e in listed if e["id"] == created["id"]] == ["250.50"]

    assert (await metrics.delete(url)).status_code == 403
    assert (await metrics.delete(url, headers=ADMIN)).status_code == 204
    for gone in (metrics.put(url, json=corrected, headers=ADMIN), metrics.delete(url, headers=ADMIN)):
        answer = await gone
        assert answer.status_code == 404
        assert answer.headers["content-type"] == "application/problem+json"
        assert answer.json()["title"] == "No such spend entry"


KNOWN = {"stage": ("'suspect'", "'advocate'", "'churned'"), "channel": ("'web_form'", "'store_visit'")}


async def test_an_entry_for_a_stage_or_channel_that_is_none_is_refused_naming_the_known_ones(
    metrics: httpx.AsyncClient,
) -> None:
    """Costs are entered per lifecycle stage and channel (000:90); one against a misspelled
    stage or channel would never meet a lead, so it is refused, naming the values there are."""
    entry = {
        "period_start": "2026-01-01",
        "period_end": "2026-01-31",
        "category": "sales",
        "amount": 100,
        "currency": "USD",
        "channel": "web_form",
        "stage": "mql",
    }
    for field, unknown in (("stage", "nope"), ("channel", "web-form")):
        answer = await metrics.post("/v1/spend", json=entry | {field: unknown}, headers=ADMIN)
        assert answer.status_code == 422, (field, answer.text)
        assert answer.headers["content-type"] == "application/problem+json"
        [error] = answer.json()["errors"]
        assert error["field"] == field, answer.text
        assert all(value in error["reason"] for value in KNOWN[field]), answer.text
    answer = await metrics.post("/v1/spend", json=entry, headers=ADMIN)
    assert answer.status_code == 201, answer.text


async def test_an_entry_stored_before_stages_and_channels_were_checked_still_lists_and_corrects(
    metrics: httpx.AsyncClient, servers: Servers
) -> None:
    """Entries kept with a stage or channel no lead has (entered before they were checked) are
    still listed as they are, and can be corrected to a known one."""
    spend_id = uuid.uuid4()
    connection = await asyncpg.connect(servers.database_url.replace("+asyncpg", ""))
    try:
        await connection.execute(
            "INSERT INTO metrics.spend"
            " (id, period_start, period_end, channel, stage, category, amount, currency) VALUES"
            " ($1, '2020-01-01', '2020-01-31', 'web-form', 'nope', 'sales', 5, 'USD')",
            spend_id,
        )
    finally:
        await connection.close()
    listed = await metrics.get("/v1/spend?limit=500", headers=ADMIN)
    assert listed.status_code == 200, listed.text
    [old] = [e for e in listed.json() if e["id"] == str(spend_id)]
    assert (old["channel"], old["stage"]) == ("web-form", "nope")
    corrected = {k: old[k] for k in ("period_start", "period_end", "category", "amount", "currency")}
    answer = await metrics.put(
        f"/v1/spend/{spend_id}", json=corrected | {"channel": "web_form", "stage": "lead"}, headers=ADMIN
    )
    assert answer.status_code == 200, answer.text
