"""Bad input and abuse: content types, malformed bodies, bounds, rate limits, Unicode kept exactly."""

import uuid

import httpx
import pytest

from services.ingest.app import create_app
from services.ingest.config import IngestSettings
from tests.conftest import ADMIN, Servers, running
from tests.helpers import create_source, opened_events_of, post_lead


async def test_non_json_body_is_415(ingest: httpx.AsyncClient) -> None:
    key = (await create_source(ingest))["key"]
    for content_type in ("text/plain", "application/x-www-form-urlencoded", "application/xml"):
        response = await ingest.post(
            "/v1/leads",
            content=b"email=a@example.kz",
            headers={"X-Source-Key": key, "content-type": content_type},
        )
        assert response.status_code == 415, content_type
        assert response.headers["content-type"] == "application/problem+json"


async def test_malformed_json_is_422(ingest: httpx.AsyncClient) -> None:
    key = (await create_source(ingest))["key"]
    response = await ingest.post(
        "/v1/leads",
        content=b'{"email": "a@example.kz",',
        headers={"X-Source-Key": key, "content-type": "application/json"},
    )
    assert response.status_code == 422 and response.headers["content-type"] == "application/problem+json"


@pytest.mark.parametrize(
    ("custom", "field"),
    [
        ({"nested": {"a": 1}}, "custom.nested"),
        ({"long": "x" * 1001}, "custom.long"),
        ({f"k{i}": i for i in range(51)}, "custom"),
        ({"bad key!": 1}, "custom.bad key!"),
    ],
)
async def test_custom_fields_are_bounded(
    ingest: httpx.AsyncClient, custom: dict[str, object], field: str
) -> None:
    key = (await create_source(ingest))["key"]
    response = await post_lead(ingest, key, email="c@example.kz", custom=custom)
    assert response.status_code == 422
    assert any(e["field"].startswith(field) for e in response.json()["errors"]), response.json()


async def test_unicode_names_are_kept_exactly(ingest: httpx.AsyncClient, servers: Servers) -> None:
    key = (await create_source(ingest))["key"]
    names = {
        "first_name": "Әйгерім",
        "last_name": "Məmmədova",
        "company": "ООО «Ёлка» — Қазақстан",
        "city": "Gəncə",
    }
    response = await post_lead(ingest, key, email=f"u-{uuid.uuid4().hex[:6]}@example.az", **names)
    lead_id = response.json()["lead_id"]
    stored = (await ingest.get(f"/v1/leads/{lead_id}", headers=ADMIN)).json()["attributes"]
    assert {k: stored[k] for k in names} == names
    event = (await opened_events_of(ingest, servers.bootstrap, lead_id, lambda es: len(es) >= 1))[0]
    assert {k: event.data[k] for k in names} == names


async def test_rate_limits_per_key_and_per_ip(servers: Servers) -> None:
    settings = servers.settings(IngestSettings, rate_limit_per_key="5/minute", rate_limit_per_ip="3/minute")
    async with running(create_app(settings)) as client:
        key = (await create_source(client))["key"]
        statuses = [(await post_lead(client, key, email="rl@example.kz")).status_code for _ in range(6)]
        assert statuses == [202] * 5 + [429]
        limited = await post_lead(client, key, email="rl@example.kz")
        assert limited.headers["content-type"] == "application/problem+json"
        assert 1 <= int(limited.headers["retry-after"]) <= 60

        guesses = [
            (await post_lead(client, f"lfk_guess{i}", email="g@example.kz")).status_code for i in range(4)
        ]
        assert guesses == [401, 401, 401, 429]


async def test_an_ipv6_host_is_limited_by_its_64_not_by_each_address_in_it(servers: Servers) -> None:
    """One host is given a /64 and may send each guess from another of its 2**64 addresses."""
    app = create_app(servers.settings(IngestSettings, rate_limit_per_ip="3/minute"))

    async def guess(client_ip: str) -> int:
        transport = httpx.ASGITransport(app=app, client=(client_ip, 40000))
        async with httpx.AsyncClient(transport=transport, base_url="http://ingest") as client:
            headers = {"X-Source-Key": "lfk_" + "h" * 43}
            return (
                await client.post("/v1/leads", json={"email": "g@example.kz"}, headers=headers)
            ).status_code

    async with app.router.lifespan_context(app):
        assert [await guess(f"2001:db8:1:2::{n:x}") for n in range(1, 5)] == [401, 401, 401, 429]
        assert await guess("2001:db8:1:3::1") == 401, "the next /64 is another host"
        assert [await guess(ip) for ip in ("::ffff:192.0.2.7", "192.0.2.7")] == [401, 401]
        assert [await guess(ip) for ip in ("::ffff:192.0.2.7", "192.0.2.8")] == [401, 401]
        assert await guess("192.0.2.7") == 429, "an IPv4 address mapped into IPv6 is that address"


async def test_behind_a_trusted_proxy_each_visitor_has_a_bucket_and_nobody_chooses_theirs(
    servers: Servers,
) -> None:
    """Behind a proxy every visitor once shared the proxy's bucket; with the proxy named in
    LEADFLOW_TRUSTED_PROXIES each has their own, and a client that is not the proxy cannot
    pick an address with X-Forwarded-For."""
    settings = servers.settings(IngestSettings, rate_limit_per_ip="2/minute", trusted_proxies="10.0.0.0/24")
    app = create_app(settings)

    async def guesses(client_ip: str, forwarded: str, count: int = 3) -> list[int]:
        transport = httpx.ASGITransport(app=app, client=(client_ip, 40000))
        async with httpx.AsyncClient(transport=transport, base_url="http://ingest") as client:
            headers = {"X-Forwarded-For": forwarded, "X-Source-Key": "lfk_" + "g" * 43}
            body = {"email": "g@example.kz"}
            return [
                (await client.post("/v1/leads", json=body, headers=headers)).status_code for _ in range(count)
            ]

    async with app.router.lifespan_context(app):
        assert await guesses("10.0.0.5", "203.0.113.1") == [401, 401, 429]
        assert await guesses("10.0.0.5", "203.0.113.2") == [401, 401, 429], "another visitor, own bucket"
        # X-Forwarded-For from the visitor itself, appended to by the proxy: the proxy's entry counts.
        assert await guesses("10.0.0.5", "203.0.113.1, 203.0.113.3") == [401, 401, 429]
        spoofed = [await guesses("198.51.100.9", f"203.0.113.{100 + i}", count=1) for i in range(3)]
        assert spoofed == [[401], [401], [429]], (
            "not from the proxy: its own address counts, whatever it says"
        )
