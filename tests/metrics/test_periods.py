"""A report period as people write it: dates (the `to` date included), naive datetimes (UTC)
and datetimes with an offset give the same leads, on every metrics route."""

import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import httpx
import pytest

from services.metrics.app import create_app
from services.metrics.config import MetricsSettings
from shared import topics
from shared.events import OUTCOME_RECORDED, OutcomeRecorded
from shared.kafka import Publisher
from shared.times import NOT_A_NUMBER
from tests.conftest import ADMIN, Servers, eventually, running
from tests.helpers import lead_captured, refused_fields

# Captured just outside, at both edges of, and inside December 2026 (UTC).
MOMENTS = {
    "before": datetime(2026, 11, 30, 23, 59, 59, tzinfo=UTC),
    "first": datetime(2026, 12, 1, 0, 0, tzinfo=UTC),
    "last": datetime(2026, 12, 31, 23, 59, 59, tzinfo=UTC),
    "after": datetime(2027, 1, 1, 0, 0, tzinfo=UTC),
}
DECEMBER = [
    {"from": "2026-12-01", "to": "2026-12-31"},
    {"from": "2026-12-01T00:00:00", "to": "2027-01-01T00:00:00"},
    {"from": "2026-12-01T05:00:00+05:00", "to": "2027-01-01T04:00:00+04:00"},
    {"from": "2026-11-30T19:00:00-05:00", "to": "2027-01-01T00:00:00Z"},
]


@pytest.fixture(scope="module")
async def december(servers: Servers) -> AsyncIterator[tuple[httpx.AsyncClient, str]]:
    """Metrics with four leads of one new channel, one at each moment."""
    channel = f"period_{uuid.uuid4().hex[:8]}"
    events = [lead_captured(channel=channel, captured_at=moment) for moment in MOMENTS.values()]
    publisher = Publisher(servers.bootstrap, "test")
    async with running(create_app(servers.settings(MetricsSettings))) as client:
        await publisher.publish([(topics.LEAD_EVENTS, str(e.lead_id).encode(), e.to_bytes()) for e in events])
        await publisher.stop()

        async def all_counted() -> bool:
            funnel = (await client.get("/v1/funnel", params={"channel": channel})).json()
            return bool(funnel["total"] == len(MOMENTS))

        await eventually(all_counted, timeout=30)
        yield client, channel


@pytest.mark.parametrize("period", DECEMBER, ids=["dates", "naive", "offsets", "other-offsets"])
async def test_a_period_of_dates_or_datetimes_counts_the_same_leads(
    december: tuple[httpx.AsyncClient, str], period: dict[str, str]
) -> None:
    client, channel = december
    response = await client.get("/v1/funnel", params={**period, "channel": channel})
    assert response.status_code == 200, response.text
    assert response.json()["total"] == 2  # "first" and "last": the `to` date is included


async def test_a_day_long_period_holds_that_whole_day(december: tuple[httpx.AsyncClient, str]) -> None:
    client, channel = december
    for day, expected in (("2026-12-01", 1), ("2026-12-31", 1), ("2026-12-15", 0)):
        response = await client.get("/v1/funnel", params={"from": day, "to": day, "channel": channel})
        assert response.json()["total"] == expected, day


@pytest.mark.parametrize("route", ["/v1/cac", "/v1/speed-to-lead", "/v1/funnel"])
async def test_every_report_takes_dates(december: tuple[httpx.AsyncClient, str], route: str) -> None:
    client, _ = december
    for period in [*DECEMBER, {**DECEMBER[0], "tz": "Asia/Almaty"}]:
        response = await client.get(route, params=period, headers=ADMIN)
        assert response.status_code == 200, (period, response.text)


async def test_spend_periods_take_dates_or_datetimes(december: tuple[httpx.AsyncClient, str]) -> None:
    client, _ = december
    entry = {"period_start": "2026-12-01T10:00:00+05:00", "period_end": "2026-12-31", "category": "marketing"}
    response = await client.post("/v1/spend", json={**entry, "amount": "310.00"}, headers=ADMIN)
    assert response.status_code == 201, response.text
    assert (response.json()["period_start"], response.json()["period_end"]) == ("2026-12-01", "2026-12-31")
    cac = (await client.get("/v1/cac", params=DECEMBER[0], headers=ADMIN)).json()
    assert cac["overall"]["costs"] == pytest.approx(310.0)  # every day of the entry is in the period


@pytest.mark.parametrize(
    "period",
    [{"from": "yesterday"}, {"to": "2026-13-01"}, {"from": "2026-12-01T25:00:00"}, {"to": "9999-12-31"}],
)
async def test_a_period_that_is_not_a_date_is_a_422_naming_it(
    december: tuple[httpx.AsyncClient, str], period: dict[str, str]
) -> None:
    client, _ = december
    response = await client.get("/v1/funnel", params=period)
    assert response.status_code == 422, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert [e["field"] for e in response.json()["errors"]] == list(period)


@pytest.mark.parametrize("period", [{"to": "20261231"}, {"from": "1795000000"}, {"from": "-1", "to": "0"}])
async def test_a_number_is_not_taken_for_a_timestamp(
    december: tuple[httpx.AsyncClient, str], period: dict[str, str]
) -> None:
    client, channel = december
    response = await client.get("/v1/funnel", params={**period, "channel": channel})
    assert refused_fields(response) == list(period)
    assert {e["reason"] for e in response.json()["errors"]} == {NOT_A_NUMBER}


@pytest.mark.parametrize("dates", [{"period_start": 0}, {"period_end": 20261231}, {"period_end": "20261231"}])
async def test_spend_periods_are_not_numbers(
    december: tuple[httpx.AsyncClient, str], dates: dict[str, object]
) -> None:
    client, _ = december
    entry = {"period_start": "2026-12-01", "period_end": "2026-12-31", "category": "marketing", **dates}
    response = await client.post("/v1/spend", json={**entry, "amount": "1.00"}, headers=ADMIN)
    assert refused_fields(response) == list(dates)


FAR_OFF = [
    {"from": "9999-12-15"},
    {"to": "9999-12-31"},
    {"from": "0001-01-01T00:00:00+05:00"},
    {"from": "2026-12-01", "to": "9999-12-31T23:59:59-05:00"},
]


@pytest.mark.parametrize("route", ["/v1/cac", "/v1/speed-to-lead", "/v1/funnel"])
@pytest.mark.parametrize("period", FAR_OFF, ids=["from-9999", "to-9999", "from-year-1", "to-past-9999"])
async def test_a_date_out_of_range_is_a_422_naming_the_field(
    december: tuple[httpx.AsyncClient, str], route: str, period: dict[str, str]
) -> None:
    client, _ = december
    params = {"from": "2026-12-01", "to": "2026-12-31", **period}
    response = await client.get(route, params=params, headers=ADMIN)
    assert response.status_code == 422, (period, response.text)
    fields = {e["field"] for e in response.json()["errors"]}
    assert fields <= {"from", "to"} and fields & set(period), response.text


@pytest.mark.parametrize("route", ["/v1/cac", "/v1/speed-to-lead", "/v1/funnel"])
async def test_a_period_that_ends_before_it_starts_is_a_422(
    december: tuple[httpx.AsyncClient, str], route: str
) -> None:
    client, _ = december
    response = await client.get(route, params={"from": "2026-12-31", "to": "2026-12-01"}, headers=ADMIN)
    assert response.status_code == 422, response.text
    assert [e["field"] for e in response.json()["errors"]] == ["to"]


# A day in a time zone: its dates (and datetimes without an offset) are in that zone, so the
# day is another stretch of UTC. Baku is UTC+4 and New York UTC-5 in December, all day.
IN_ZONES = [
    ({"from": "2026-12-01", "to": "2026-12-01"}, None, {"first"}),
    ({"from": "2026-12-01", "to": "2026-12-01"}, "Asia/Baku", {"before", "first"}),
    ({"from": "2026-12-31", "to": "2026-12-31"}, "America/New_York", {"last", "after"}),
    ({"from": "2026-12-01T03:00:00", "to": "2026-12-01T04:00:00"}, "Asia/Baku", {"before"}),
    ({"from": "2026-12-01T00:00:00Z", "to": "2026-12-01T00:00:01+00:00"}, "Asia/Baku", {"first"}),
]


@pytest.mark.parametrize(
    ("period", "tz", "counted"), IN_ZONES, ids=["utc", "baku", "new-york", "naive", "offsets"]
)
async def test_a_period_is_read_in_the_time_zone_given(
    december: tuple[httpx.AsyncClient, str], period: dict[str, str], tz: str | None, counted: set[str]
) -> None:
    client, channel = december
    params = {**period, "channel": channel} | ({"tz": tz} if tz else {})
    response = await client.get("/v1/funnel", params=params)
    assert response.status_code == 200, response.text
    assert response.json()["total"] == len(counted), (period, tz)


@pytest.mark.parametrize(
    "tz",
    [
        "Mars/Olympus",
        "+05:00",
        "../../etc/passwd",
        "UTC\x00",
        "posixrules",
        "right/UTC",
        "posix/Asia/Almaty",
        "localtime",
        "Factory",
    ],
)
async def test_a_time_zone_that_is_not_one_is_a_422_naming_it(
    december: tuple[httpx.AsyncClient, str], tz: str
) -> None:
    client, _ = december
    for route in ("/v1/funnel", "/v1/cac", "/v1/speed-to-lead"):
        params = {"from": "2026-12-01", "to": "2026-12-31", "tz": tz}
        response = await client.get(route, params=params, headers=ADMIN)
        assert response.status_code == 422, (route, response.text)
        assert [e["field"] for e in response.json()["errors"]] == ["tz"], response.text


async def test_cac_months_and_spend_days_are_those_of_the_time_zone(
    december: tuple[httpx.AsyncClient, str], servers: Servers
) -> None:
    """A customer won at 01:00 on 1 December in Baku (21:00 on 30 November in UTC), and 100
    spent on 1 December: in Baku's months both are December's, one customer for 100."""
    client, _ = december
    campaign = f"zone_{uuid.uuid4().hex[:8]}"
    won_at = datetime(2026, 11, 30, 21, tzinfo=UTC)
    captured = lead_captured(campaign=campaign, captured_at=won_at)
    won = OutcomeRecorded(outcome_id=uuid.uuid4(), outcome="won", occurred_at=won_at, amount=100.0)
    publisher = Publisher(servers.bootstrap, "test")
    try:
        events = [captured, captured.follow_up(OUTCOME_RECORDED, "ingest", won)]
        await publisher.publish([(topics.LEAD_EVENTS, str(e.lead_id).encode(), e.to_bytes()) for e in events])
    finally:
        await publisher.stop()
    spend = {"period_start": "2026-12-01", "period_end": "2026-12-01", "category": "marketing"}
    entered = await client.post(
        "/v1/spend", json={**spend, "amount": "100", "campaign": campaign}, headers=ADMIN
    )
    assert entered.status_code == 201, entered.text

    async def rows(**params: str) -> dict[str, tuple[int, float]]:
        query = {"group_by": "campaign", **params}
        answer = await client.get("/v1/cac", params=query, headers=ADMIN)
        assert answer.status_code == 200, answer.text
        return {
            r["period"]: (r["customers"], r["costs"]) for r in answer.json()["rows"] if r["group"] == campaign
        }

    async def won_in_baku_december() -> bool:
        return await rows(**{"from": "2026-12-01", "to": "2026-12-31", "tz": "Asia/Baku"}) == {
            "2026-12": (1, 100.0)
        }

    await eventually(won_in_baku_december, timeout=30)
    in_utc = await rows(**{"from": "2026-11-01", "to": "2026-12-31"})
    assert in_utc == {"2026-11": (1, 0.0), "2026-12": (0, 100.0)}
