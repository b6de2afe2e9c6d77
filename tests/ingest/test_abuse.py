"""Bad input and abuse: content types, malformed bodies, bounds, rate limits, Unicode kept exactly."""

import uuid

import httpx
import pytest

from services.ingest.api import common
from services.ingest.app import create_app
from services.ingest.config import IngestSettings
from tests.conftest import ADMIN, Servers, running
from tests.helpers import create_source, opened_events_of, post_lead
from tests.shared.test_no_personal_data_in_logs import every_log_line


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
    settings = servers.settings(
        IngestSettings, rate_limit_per_key="5/minute", rate_limit_per_ip_other="3/minute"
    )
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


async def test_a_bot_posting_a_form_from_one_address_is_held_after_ten_posts_a_minute(
    servers: Servers,
) -> None:
    """The review's bot: 25 form posts a second from one address, no Origin, the honeypot empty,
    a new email each time. Under the default of 30/second;600/minute it had 98 of 100 taken and
    the rep paged 99 times; a person posts a form once, an office behind one NAT a few times a
    day. A preflight is no post: it keeps its own budget, and another visitor theirs."""
    app = create_app(servers.settings(IngestSettings))  # the defaults
    assert app.state.settings.rate_limit_per_ip == "10/minute;60/hour"

    def client(ip: str) -> httpx.AsyncClient:
        transport = httpx.ASGITransport(app=app, client=(ip, 40000))
        return httpx.AsyncClient(transport=transport, base_url="http://ingest", headers=ADMIN)

    async with (
        app.router.lifespan_context(app),
        client("203.0.113.5") as bot,
        client("198.51.100.7") as person,
    ):
        source = await create_source(bot, channel="landing_page")
        url = f"/v1/forms/{source['id']}"
        accept = {"Accept": "application/json"}
        answers = [
            await bot.post(
                url, data={"email": f"bot-{n}-{uuid.uuid4().hex[:6]}@example.kz", "_hp": ""}, headers=accept
            )
            for n in range(25)
        ]
        assert [a.status_code for a in answers] == [202] * 10 + [429] * 15
        assert 1 <= int(answers[-1].headers["retry-after"]) <= 60
        # A person behind that address, posting the form from the page, is asked in their words.
        browser = {"Accept": "text/html,*/*;q=0.8", "Accept-Language": "ru-RU,ru;q=0.9"}
        held = await bot.post(url, data={"email": "person@example.kz"}, headers=browser)
        assert held.status_code == 429 and held.headers["content-type"].startswith("text/html")
        assert held.headers["content-language"] == "ru" and 1 <= int(held.headers["retry-after"]) <= 60
        assert "отправьте её ещё раз через несколько минут" in held.text
        site = "https://promo.example.kz"
        landing = await create_source(bot, channel="landing_page", allowed_origins=[site])
        preflight = {"Origin": site, "Access-Control-Request-Method": "POST"}
        assert (await bot.options(f"/v1/forms/{landing['id']}", headers=preflight)).status_code == 204
        email = f"person-{uuid.uuid4().hex[:6]}@example.kz"
        assert (await person.post(url, data={"email": email}, headers=accept)).status_code == 202


async def test_form_posts_held_behind_a_proxy_nobody_named_say_so_in_the_log(
    servers: Servers, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With LEADFLOW_TRUSTED_PROXIES unset behind a load balancer every visitor has its address:
    a site's eleventh form post in a minute is held, whoever sends it, and only the log can tell
    the operator why."""
    monkeypatch.setattr(common, "_untrusted_proxy_log", common._Throttle(60))  # none logged yet
    app = create_app(servers.settings(IngestSettings))
    transport = httpx.ASGITransport(app=app, client=("10.0.0.5", 40000))
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=transport, base_url="http://ingest", headers=ADMIN) as balancer,
    ):
        source = await create_source(balancer, channel="landing_page")
        with every_log_line() as written:
            statuses = [
                (
                    await balancer.post(
                        f"/v1/forms/{source['id']}",
                        data={"email": f"v{n}-{uuid.uuid4().hex[:6]}@example.kz"},
                        headers={"Accept": "application/json", "X-Forwarded-For": f"198.51.100.{n}"},
                    )
                ).status_code
                for n in range(12)
            ]
    assert statuses == [202] * 10 + [429] * 2
    logged = [line for line in written.getvalue().splitlines() if "LEADFLOW_TRUSTED_PROXIES" in line]
    assert len(logged) == 1 and "198.51.100" not in written.getvalue()


async def test_an_ipv6_host_is_limited_by_its_64_not_by_each_address_in_it(servers: Servers) -> None:
    """One host is given a /64 and may send each guess from another of its 2**64 addresses."""
    app = create_app(servers.settings(IngestSettings, rate_limit_per_ip_other="3/minute"))

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
    settings = servers.settings(
        IngestSettings, rate_limit_per_ip_other="2/minute", trusted_proxies="10.0.0.0/24"
    )
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
