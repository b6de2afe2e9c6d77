"""SMS and messenger providers as they answer: a refusal for good (a 4xx) is not tried again,
and a provider that asks to wait (429 or 503 with Retry-After) is waited for. The real touch
sender, a real HTTP provider on localhost."""

import asyncio
import uuid
from datetime import timedelta
from email.utils import format_datetime

import asyncpg

from shared.events import utcnow
from tests.conftest import Servers, eventually
from tests.nurture.test_email_sending import outcomes, relay, sender
from tests.nurture.test_followup import zone_where_it_is
from tests.nurture.test_subscriptions import SUPERSCRIPT_TWO
from tests.receiver import webhook_receiver


async def due_text(servers: Servers, next_step_in: float | None = None) -> list[str]:
    """A lead awake now (noon where they are), with consent and a phone, and one SMS due now
    (and its next step, due `next_step_in` seconds later)."""
    lead, touch, following = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    connection = await asyncpg.connect(servers.database_url.replace("+asyncpg", ""))
    try:
        await connection.execute(
            "INSERT INTO nurture.followed_leads (lead_id, context, playbook, playbook_version) VALUES ($1,"
            " jsonb_build_object('phone', '+77010000000', 'consent', true, 'timezone', $2::text), 'mql', 1)",
            lead,
            zone_where_it_is(12),
        )
        await connection.execute(
            "INSERT INTO nurture.touches (id, lead_id, correlation_id, playbook, playbook_version, step,"
            " channel, template, status, due_at) VALUES ($1, $2, $3, 'mql', 1, 0, 'sms', 'checking_in',"
            " 'scheduled', now())",
            touch,
            lead,
            uuid.uuid4(),
        )
        if next_step_in is not None:
            await connection.execute(
                "INSERT INTO nurture.touches (id, lead_id, correlation_id, playbook, playbook_version, step,"
                " channel, template, status, due_at) VALUES ($1, $2, $3, 'mql', 1, 1, 'sms', 'checking_in',"
                " 'scheduled', now() + make_interval(secs => $4))",
                following,
                lead,
                uuid.uuid4(),
                next_step_in,
            )
    finally:
        await connection.close()
    return [str(touch)] + ([str(following)] if next_step_in is not None else [])


async def test_a_text_the_provider_refuses_for_good_is_not_tried_again(servers: Servers) -> None:
    with relay() as box, webhook_receiver(statuses=[400, 400, 400]) as provider:
        async with sender(servers, box, sms_url=provider.url, touch_retry_seconds=0.05):
            [touch] = await due_text(servers)
            done = await eventually(lambda: outcomes(servers, [touch]), timeout=20)
    assert done[touch][:2] == ("failed", 1), done
    assert len(provider.received()) == 1


async def test_a_provider_asking_to_wait_is_waited_for(servers: Servers) -> None:
    """Its Retry-After was not read: the next try came at the touch's own pace (here 0.05 s)."""
    with relay() as box, webhook_receiver(statuses=[429], headers={"Retry-After": "2"}) as provider:
        async with sender(servers, box, sms_url=provider.url, touch_retry_seconds=0.05):
            [touch] = await due_text(servers)
            started = asyncio.get_running_loop().time()
            done = await eventually(lambda: outcomes(servers, [touch]), timeout=20)
            took = asyncio.get_running_loop().time() - started
    assert done[touch][:2] == ("sent", 2), done
    assert len(provider.received()) == 2 and took >= 2, took


async def test_a_retry_after_of_digits_not_ascii_is_not_read_as_seconds(servers: Servers) -> None:
    """'²' passed for digits and then failed as a number: the touch failed on that error, not
    on the provider's answer (found by a review)."""
    headers = {"Retry-After": SUPERSCRIPT_TWO}
    with relay() as box, webhook_receiver(statuses=[429], headers=headers) as provider:
        async with sender(servers, box, sms_url=provider.url, touch_attempts=1):
            [touch] = await due_text(servers)
            done = await eventually(lambda: outcomes(servers, [touch]), timeout=20)
    assert done[touch] == ("failed", 1, "sms provider answered 429"), done


async def test_a_provider_asking_to_wait_until_a_date_is_waited_for(servers: Servers) -> None:
    """Retry-After's other form, an HTTP date, was not read: the next try came at once."""
    until = format_datetime(utcnow() + timedelta(seconds=4), usegmt=True)  # 3 to 4 s from now
    with relay() as box, webhook_receiver(statuses=[429], headers={"Retry-After": until}) as provider:
        async with sender(servers, box, sms_url=provider.url, touch_retry_seconds=0.05):
            [touch] = await due_text(servers)
            started = asyncio.get_running_loop().time()
            done = await eventually(lambda: outcomes(servers, [touch]), timeout=20)
            took = asyncio.get_running_loop().time() - started
    assert done[touch][:2] == ("sent", 2), done
    assert took >= 2, took


async def test_a_retry_the_next_step_would_overtake_is_not_made(servers: Servers) -> None:
    """The provider asks to wait 60 s, and the lead's next step is due in 1: the first step's
    retry would have come after it (a stale message, out of the sequence's order)."""
    with relay() as box, webhook_receiver(statuses=[429], headers={"Retry-After": "60"}) as provider:
        async with sender(servers, box, sms_url=provider.url, touch_retry_seconds=0.05):
            first, following = await due_text(servers, next_step_in=1.0)
            done = await eventually(lambda: outcomes(servers, [first, following]), timeout=20)
    assert done[first][:2] == ("failed", 1), done
    assert "next step" in (done[first][2] or ""), done
    assert done[following][:2] == ("sent", 1), done
    assert len(provider.received()) == 2
