"""CAC and LTV are reckoned in one currency: 100 USD of spend summed into 200,000 KZT read
200,100 and a 100 USD purchase counted as 100 KZT pulled an average check of 130,000 down to
86,700 (found by a review). Amounts in other currencies are left out of every figure, not
converted (there are no exchange rates), and shown beside each row with a warning."""

import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest

from services.metrics.app import create_app
from services.metrics.config import MetricsSettings
from shared.events import OUTCOME_RECORDED, Envelope, OutcomeRecorded
from shared.kafka import Publisher
from tests.conftest import ADMIN, Servers, eventually, running
from tests.helpers import lead_captured
from tests.metrics.journeys import topic_of

NOW = datetime(2026, 12, 7, 9, tzinfo=UTC)
NOVEMBER = {"from": "2026-11-01", "to": "2026-11-30", "tz": "Asia/Almaty", "group_by": "channel"}


@pytest.fixture(scope="module")
async def metrics(servers: Servers) -> AsyncIterator[httpx.AsyncClient]:
    """Every amount in this module's database is entered before the first test reads it."""
    settings = servers.settings(MetricsSettings, currency="KZT")
    async with running(create_app(settings, clock=lambda: NOW)) as client:
        spend = {"period_start": "2026-11-01", "period_end": "2026-11-30", "category": "marketing"}
        for amount, currency in (("200000", "KZT"), ("100", "USD")):
            entry = {**spend, "amount": amount, "currency": currency, "channel": "ad"}
            entered = await client.post("/v1/spend", json=entry, headers=ADMIN)
            assert entered.status_code == 201, entered.text
        sales = [("ad", 130000.0, "KZT"), ("ad", 130000.0, None), ("ad", 100.0, "USD")]
        sales += [("referral", 130000.0, "KZT"), ("referral", 130000.0, "KZT"), ("referral", 100.0, "USD")]
        await publish(
            servers, [e for channel, amount, code in sales for e in customer(channel, amount, code)]
        )
        await eventually(lambda: everyone_counted(client), timeout=30)
        yield client


def customer(channel: str, amount: float, currency: str | None) -> list[Envelope]:
    won_at = datetime(2026, 11, 10, 7, tzinfo=UTC)
    captured = lead_captured(channel=channel, captured_at=won_at.isoformat())
    sale = OutcomeRecorded(
        outcome_id=uuid.uuid4(), outcome="won", occurred_at=won_at, amount=amount, currency=currency
    )
    return [captured, captured.follow_up(OUTCOME_RECORDED, "ingest", sale)]


async def publish(servers: Servers, events: list[Envelope]) -> None:
    publisher = Publisher(servers.bootstrap, "test")
    try:
        await publisher.publish([(topic_of(e), str(e.lead_id).encode(), e.to_bytes()) for e in events])
    finally:
        await publisher.stop()


async def read(client: httpx.AsyncClient, path: str, **params: Any) -> dict[str, Any]:
    answer = await client.get(path, params=params, headers=ADMIN)
    assert answer.status_code == 200, answer.text
    return answer.json()  # type: ignore[no-any-return]


async def everyone_counted(client: httpx.AsyncClient) -> bool:
    return bool((await read(client, "/v1/cac", **NOVEMBER))["overall"]["customers"] == 6)


async def test_cac_is_in_the_reports_currency_and_the_others_are_shown_beside_each_row(
    metrics: httpx.AsyncClient,
) -> None:
    report = await read(metrics, "/v1/cac", **NOVEMBER)
    ad = next(row for row in report["rows"] if row["group"] == "ad")
    assert (ad["costs"], ad["customers"], ad["cac"], ad["revenue"]) == (200000.0, 3, 66666.67, 260000.0)
    assert report["currency"] == "KZT" and "not converted" in report["currency_note"]
    assert ad["other_currencies"] == {
        "USD": {"costs": 100.0, "revenue": 100.0, "customers": None, "purchases": None}
    }
    assert any("USD" in warning and "not converted" in warning for warning in ad["warnings"])
    referral = next(row for row in report["rows"] if row["group"] == "referral")
    assert referral["other_currencies"]["USD"]["revenue"] == 100.0 and referral["revenue"] == 260000.0
    assert report["overall"]["costs"] == 200000.0
    assert report["overall"]["other_currencies"]["USD"] == {
        "costs": 100.0,
        "revenue": 200.0,
        "customers": None,
        "purchases": None,
    }


async def test_ltv_counts_the_purchases_in_the_reports_currency_alone(metrics: httpx.AsyncClient) -> None:
    report = await read(metrics, "/v1/ltv", group_by="channel")
    referral = next(row for row in report["rows"] if row["group"] == "referral")
    assert (referral["customers"], referral["average_check"]) == (2, 130000.0)
    assert report["currency"] == "KZT"
    assert referral["other_currencies"] == {
        "USD": {"costs": 0.0, "revenue": 100.0, "customers": 1, "purchases": 1}
    }
    ad = next(row for row in report["rows"] if row["group"] == "ad")
    assert ad["other_currencies"]["USD"]["costs"] == 100.0  # November's, all of it begun by NOW
    assert report["overall"]["other_currencies"]["USD"] == {
        "costs": 100.0,
        "revenue": 200.0,
        "customers": 2,
        "purchases": 2,
    }
    assert report["cac"] == round(200000 / 6, 2)


async def test_unset_the_reports_currency_is_the_one_most_spend_entries_are_in(
    metrics: httpx.AsyncClient, servers: Servers
) -> None:
    async with running(create_app(servers.settings(MetricsSettings), clock=lambda: NOW)) as unset:
        report = await read(unset, "/v1/cac", **NOVEMBER)  # one entry in each: the first by name
    ad = next(row for row in report["rows"] if row["group"] == "ad")
    assert (ad["costs"], ad["revenue"], report.get("currency")) == (200000.0, 260000.0, "KZT")
    with pytest.raises(ValueError, match="currency"):
        servers.settings(MetricsSettings, currency="tenge")
