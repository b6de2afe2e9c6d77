"""An operator sends a failed touch again (`POST /v1/touches/{id}/resend`, admin): due at once and
sent by the real touch sender to a real provider on localhost; refused (409) for a touch that did
not fail, one its lead's next step has overtaken, or an email in doubt unless asked in words."""

import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import asyncpg
import httpx

from services.nurture.app import create_app
from services.nurture.config import NurtureSettings
from tests.conftest import ADMIN, VIEWER, Servers, eventually, running
from tests.nurture.test_email_sending import outcomes
from tests.nurture.test_text_providers import due_text
from tests.receiver import Receiver, webhook_receiver


@asynccontextmanager
async def nurture(servers: Servers, sms_url: str) -> AsyncIterator[httpx.AsyncClient]:
    settings = servers.settings(
        NurtureSettings, sms_url=sms_url, touch_poll_seconds=0.05, touch_retry_seconds=0.05
    )
    async with running(create_app(settings)) as client:
        yield client


async def set_touch(servers: Servers, touch: str, status: str, detail: str | None = None) -> None:
    connection = await asyncpg.connect(servers.database_url.replace("+asyncpg", ""))
    try:
        await connection.execute(
            "UPDATE nurture.touches SET status = $2, detail = $3, attempts = 1 WHERE id = $1",
            uuid.UUID(touch),
            status,
            detail,
        )
    finally:
        await connection.close()


def sends_of(provider: Receiver, touch: str) -> int:
    """The provider's requests for this touch (another module's touch due meanwhile is not ours)."""
    return sum(touch in received.body.decode() for received in provider.received())


async def test_a_touch_refused_for_good_is_sent_again_once_asked(servers: Servers) -> None:
    with webhook_receiver(statuses=[400]) as provider:
        async with nurture(servers, provider.url) as client:
            [touch] = await due_text(servers)
            failed = await eventually(lambda: outcomes(servers, [touch]), timeout=20)
            assert failed[touch][:2] == ("failed", 1), failed
            answer = await client.post(f"/v1/touches/{touch}/resend", headers=ADMIN)
            assert answer.status_code == 200, answer.text
            assert answer.json()["status"] == "scheduled" and answer.json()["attempts"] == 0
            assert answer.json()["detail"] == "sent again on request"
            sent = await eventually(lambda: outcomes(servers, [touch]), timeout=20)
    assert sent[touch][:2] == ("sent", 1), sent
    assert sends_of(provider, touch) == 2


async def test_only_a_failed_touch_is_sent_again(servers: Servers) -> None:
    with webhook_receiver() as provider:
        async with nurture(servers, provider.url) as client:
            [touch] = await due_text(servers)
            await eventually(lambda: outcomes(servers, [touch]), timeout=20)
            answer = await client.post(f"/v1/touches/{touch}/resend", headers=ADMIN)
            unknown = await client.post(f"/v1/touches/{uuid.uuid4()}/resend", headers=ADMIN)
            as_viewer = await client.post(f"/v1/touches/{touch}/resend", headers=VIEWER)
    assert answer.status_code == 409, answer.text
    assert answer.headers["content-type"] == "application/problem+json"
    assert "this one is sent" in answer.json()["title"]
    assert unknown.status_code == 404, unknown.text
    assert as_viewer.status_code == 403, as_viewer.text
    assert sends_of(provider, touch) == 1


async def test_a_touch_the_next_step_overtook_is_not_sent_again(servers: Servers) -> None:
    with webhook_receiver() as provider:
        async with nurture(servers, provider.url) as client:
            first, following = await due_text(servers, next_step_in=0.0)
            await eventually(lambda: outcomes(servers, [first, following]), timeout=20)
            await set_touch(servers, first, "failed", "SMS: 400")
            answer = await client.post(f"/v1/touches/{first}/resend", headers=ADMIN)
    assert answer.status_code == 409, answer.text
    assert "next step" in answer.json()["title"]


async def test_an_email_in_doubt_is_sent_again_only_when_asked_in_words(servers: Servers) -> None:
    with webhook_receiver(statuses=[400]) as provider:
        async with nurture(servers, provider.url) as client:
            [touch] = await due_text(servers)
            await eventually(lambda: outcomes(servers, [touch]), timeout=20)
            await set_touch(servers, touch, "failed", "in doubt: the SMTP server took this email's data")
            refused = await client.post(f"/v1/touches/{touch}/resend", headers=ADMIN)
            wrong = await client.post(f"/v1/touches/{touch}/resend", json={"even_if": True}, headers=ADMIN)
            taken = await client.post(
                f"/v1/touches/{touch}/resend", json={"even_if_in_doubt": True}, headers=ADMIN
            )
            sent = await eventually(lambda: outcomes(servers, [touch]), timeout=20)
    assert refused.status_code == 409 and "even_if_in_doubt" in refused.json()["title"], refused.text
    assert wrong.status_code == 422, wrong.text
    assert taken.status_code == 200, taken.text
    assert sent[touch][:2] == ("sent", 1), sent


async def test_a_touch_of_a_playbook_the_lead_has_left_is_not_sent_again(servers: Servers) -> None:
    """The lead turned warm since: the MQL step that failed belongs to a sequence it has left."""
    with webhook_receiver(statuses=[400]) as provider:
        async with nurture(servers, provider.url) as client:
            [touch] = await due_text(servers)
            await eventually(lambda: outcomes(servers, [touch]), timeout=20)
            connection = await asyncpg.connect(servers.database_url.replace("+asyncpg", ""))
            try:
                await connection.execute(
                    "UPDATE nurture.followed_leads SET playbook = 'warm'"
                    " WHERE lead_id = (SELECT lead_id FROM nurture.touches WHERE id = $1)",
                    uuid.UUID(touch),
                )
            finally:
                await connection.close()
            answer = await client.post(f"/v1/touches/{touch}/resend", headers=ADMIN)
    assert answer.status_code == 409, answer.text
    assert "another playbook" in answer.json()["title"]
