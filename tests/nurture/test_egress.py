"""SSRF through webhook URLs, tried as an attacker with the admin token would: point a rep or a
subscription at 127.0.0.1, 0x7f000001, a name that resolves to loopback, cloud metadata, a
private network. Nothing is sent there (checked against the address actually dialled, after
DNS), the delivery log keeps a short generic reason (no port scanning through it), production
takes https only, and the SMS adapter follows no redirect."""

import ipaddress
import uuid
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
import yaml

from services.nurture.app import create_app
from services.nurture.config import NurtureSettings
from services.nurture.egress import EgressPolicy
from services.nurture.playbooks import default_playbooks_text
from shared import topics
from shared.embedded import free_port
from shared.kafka import Publisher
from tests.conftest import ADMIN, Servers, caught_up, eventually, running
from tests.helpers import lead_classified
from tests.nurture.test_followup import classified
from tests.receiver import webhook_receiver

ALLOWED = "127.0.0.2/32"
INSIDE = ["127.0.0.1", "10.1.2.3", "172.16.0.9", "192.168.1.1", "169.254.169.254", "100.64.0.1", "0.0.0.0"]
INSIDE += ["::1", "::ffff:127.0.0.1", "fd00::1", "fe80::1", "224.0.0.1"]


def test_inside_addresses_are_refused_unless_allowed() -> None:
    nothing_allowed = EgressPolicy()
    for address in INSIDE:
        assert not nothing_allowed.permits(ipaddress.ip_address(address)), address
    assert nothing_allowed.permits(ipaddress.ip_address("93.184.216.34"))
    assert nothing_allowed.permits(ipaddress.ip_address("2606:2800:220:1::1"))
    inside = EgressPolicy.parse("10.0.0.0/8, ::1")
    assert inside.permits(ipaddress.ip_address("10.1.2.3")) and inside.permits(ipaddress.ip_address("::1"))
    assert not inside.permits(ipaddress.ip_address("127.0.0.1"))


# IPv6 ways to inside IPv4 addresses: through a NAT64 gateway (64:ff9b::/96, and the local-use
# 64:ff9b:1::/48), a 6to4 relay (2002::/16), SIIT's IPv4-translated form (::ffff:0:0:0/96) or
# the deprecated IPv4-compatible form (::/96).
CARRIED = ["64:ff9b::a9fe:a9fe", "64:ff9b::a00:1", "64:ff9b::7f00:1", "64:ff9b:1::a9fe:a9fe"]
CARRIED += ["2002:a9fe:a9fe::", "2002:c0a8:101::1", "::a9fe:a9fe", "::7f00:1"]
CARRIED += ["::ffff:0:a9fe:a9fe", "::ffff:0:a00:1"]


def test_ipv6_ways_to_inside_ipv4_addresses_are_refused() -> None:
    """Where a NAT64 gateway or a 6to4 relay is on the way (an IPv6-only cluster, a cloud's
    DNS64), 64:ff9b::a9fe:a9fe is the metadata service and 2002:a00:1:: a private host. Python
    calls them global; what they carry is judged instead, so a public one still goes."""
    nothing_allowed = EgressPolicy()
    for address in CARRIED:
        assert not nothing_allowed.permits(ipaddress.ip_address(address)), address
    for public in ("64:ff9b::5db8:d822", "2002:5db8:d822::1", "::ffff:0:5db8:d822"):  # 93.184.216.34
        assert nothing_allowed.permits(ipaddress.ip_address(public)), public
    assert EgressPolicy.parse("10.0.0.0/8").permits(ipaddress.ip_address("64:ff9b::a00:1"))


@pytest.fixture(scope="module")
async def guarded(servers: Servers) -> AsyncIterator[httpx.AsyncClient]:
    """Nurture with one inside address allowed (127.0.0.2, where nothing listens), as in
    production otherwise (but http still taken)."""
    settings = servers.settings(
        NurtureSettings, egress_allow=ALLOWED, webhook_retry_schedule=[3600.0], touches_enabled=False
    )
    app = create_app(settings)
    async with running(app) as client:
        await caught_up(app)
        yield client


async def test_inside_urls_are_refused_when_registered(guarded: httpx.AsyncClient) -> None:
    urls = ["http://127.0.0.1:9000/hook", "http://[::1]/hook", "http://169.254.169.254/latest/meta-data"]
    for url in [*urls, "http://0x7f000001:9000/hook", "http://2130706433/hook", "http://10.0.0.1/"]:
        rep = {"name": "Mallory", "webhook_url": url}
        answer = await guarded.post("/v1/reps", json=rep, headers=ADMIN)
        assert answer.status_code == 422, answer.text
        assert answer.json()["errors"][0]["field"] == "webhook_url", answer.text
        sub = await guarded.post("/v1/webhooks", json={"url": url, "events": ["lead.hot"]}, headers=ADMIN)
        assert sub.status_code == 422 and sub.json()["errors"][0]["field"] == "url", sub.text


async def test_ipv6_urls_to_inside_ipv4_addresses_are_refused_when_registered(
    guarded: httpx.AsyncClient,
) -> None:
    for address in CARRIED:
        url = f"http://[{address}]/hook"
        rep = await guarded.post("/v1/reps", json={"name": "Mallory", "webhook_url": url}, headers=ADMIN)
        assert rep.status_code == 422 and rep.json()["errors"][0]["field"] == "webhook_url", rep.text
        sub = await guarded.post("/v1/webhooks", json={"url": url, "events": ["lead.hot"]}, headers=ADMIN)
        assert sub.status_code == 422 and sub.json()["errors"][0]["field"] == "url", sub.text


async def test_names_that_lead_inside_are_refused_when_dialled(
    guarded: httpx.AsyncClient, servers: Servers
) -> None:
    """`localhost` passes as a name when registered; the connection to what it resolves to is
    refused, so the receiver listening there gets nothing."""
    with webhook_receiver() as receiver:
        port = receiver.url.split(":")[2].split("/")[0]
        endpoints = []
        for host in ("localhost",):
            body = {"url": f"http://{host}:{port}/hook", "events": ["lead.classified"]}
            answer = await guarded.post("/v1/webhooks", json=body, headers=ADMIN)
            assert answer.status_code == 201, answer.text
            endpoints.append(answer.json())
        event = lead_classified("warm")
        publisher = Publisher(servers.bootstrap, "test")
        try:
            await publisher.publish(
                [(topics.LEAD_CLASSIFICATIONS, str(event.lead_id).encode(), event.to_bytes())]
            )
        finally:
            await publisher.stop()

        async def logged(endpoint: dict[str, Any]) -> list[dict[str, Any]] | None:
            found = await guarded.get(f"/v1/webhooks/{endpoint['id']}/deliveries", headers=ADMIN)
            attempts = [a for d in found.json() for a in d["attempt_log"]]
            return attempts or None

        for endpoint in endpoints:
            [attempt] = await eventually(lambda e=endpoint: logged(e), timeout=30)
            assert attempt["status_code"] is None
            assert attempt["error"].startswith("refused: the address is not a public one"), attempt
            assert port not in attempt["error"] and "127.0.0.1" not in attempt["error"]
        assert receiver.received() == [], "nothing reached the inside receiver"


async def test_a_failed_attempt_logs_a_generic_reason(guarded: httpx.AsyncClient, servers: Servers) -> None:
    """A closed port on an allowed address: 'could not connect', not the socket's own error
    (which names the address and tells a closed port from a filtered one)."""
    closed = f"http://127.0.0.2:{free_port()}/hook"
    answer = await guarded.post(
        "/v1/webhooks", json={"url": closed, "events": ["lead.classified"]}, headers=ADMIN
    )
    assert answer.status_code == 201, answer.text
    endpoint = answer.json()
    event = lead_classified("warm")
    publisher = Publisher(servers.bootstrap, "test")
    try:
        await publisher.publish(
            [(topics.LEAD_CLASSIFICATIONS, str(event.lead_id).encode(), event.to_bytes())]
        )
    finally:
        await publisher.stop()

    async def logged() -> list[dict[str, Any]] | None:
        found = await guarded.get(f"/v1/webhooks/{endpoint['id']}/deliveries", headers=ADMIN)
        return [a for d in found.json() for a in d["attempt_log"]] or None

    [attempt] = await eventually(logged, timeout=30)
    assert attempt["error"] == "could not connect or the connection broke", attempt


async def test_production_takes_https_only(servers: Servers) -> None:
    settings = servers.settings(
        NurtureSettings,
        env="production",
        admin_token="test-admin-token",
        secret_key="s" * 32,
        unsubscribe_secret="u" * 32,
        touches_enabled=False,
    )
    async with running(create_app(settings)) as nurture:
        plain = await nurture.post(
            "/v1/reps", json={"name": "A", "webhook_url": "http://crm.example.kz/h"}, headers=ADMIN
        )
        secure = await nurture.post(
            "/v1/reps", json={"name": "B", "webhook_url": "https://crm.example.kz/h"}, headers=ADMIN
        )
    assert plain.status_code == 422 and plain.json()["errors"][0]["reason"] == "must be https", plain.text
    assert secure.status_code == 201, secure.text


async def test_the_sms_adapter_follows_no_redirect(servers: Servers) -> None:
    """A provider URL answering 302 to an inside address: the text is not sent there."""
    with (
        webhook_receiver() as inside,
        webhook_receiver(statuses=[302] * 10, headers={"location": inside.url}) as sms,
    ):
        settings = servers.settings(
            NurtureSettings,
            sms_url=sms.url,
            touch_poll_seconds=0.05,
            touch_retry_seconds=0.05,
            webhook_timeout_seconds=3,
            touch_lease_seconds=7,
        )
        async with running(create_app(settings)) as nurture:
            playbooks = yaml.safe_load(default_playbooks_text())
            texting = {
                "name": "texting",
                "when": {"channel": ["redirected"]},
                "steps": [{"after": "0m", "channel": "sms", "template": "checking_in"}],
            }
            playbooks["playbooks"].insert(0, texting)
            assert (await nurture.put("/v1/playbooks", json=playbooks, headers=ADMIN)).status_code == 201
            event = classified("warm", channel="redirected", phone="+77017770000", lead_id=uuid.uuid4())
            publisher = Publisher(servers.bootstrap, "test")
            try:
                await publisher.publish(
                    [(topics.LEAD_CLASSIFICATIONS, str(event.lead_id).encode(), event.to_bytes())]
                )
            finally:
                await publisher.stop()

            async def failed() -> dict[str, Any] | None:
                timeline = (await nurture.get(f"/v1/leads/{event.lead_id}/touches", headers=ADMIN)).json()
                return next((t for t in timeline if t["status"] == "failed"), None)

            touch = await eventually(failed, timeout=30)
    assert "302" in touch["detail"], touch
    assert sms.received() and inside.received() == [], "the redirect was not followed"
