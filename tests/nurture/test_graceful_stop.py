"""A nurture stopped (SIGTERM, a deploy) while an email is on its way finishes that send and
records it: the touch is not sent again by the next process once its lease runs out."""

import asyncio
import uuid

import yaml
from sqlalchemy import text

from services.nurture.app import create_app
from services.nurture.config import NurtureSettings
from services.nurture.playbooks import default_playbooks_text
from shared import topics
from shared.db import Database
from shared.kafka import Publisher
from tests.conftest import ADMIN, Servers, eventually, running
from tests.nurture.holding import Together, smtp_server
from tests.nurture.test_followup import classified

ONE_EMAIL = {
    "name": "one",
    "when": {"channel": ["one-email"]},
    "steps": [{"after": "0m", "channel": "email", "template": "content"}],
}


async def test_a_send_in_flight_at_shutdown_is_finished_and_recorded(servers: Servers) -> None:
    held = Together(2)  # holds the first email at the SMTP server (a second never comes)
    with smtp_server(together=held) as mailbox:
        settings = servers.settings(
            NurtureSettings,
            smtp_port=mailbox.port,
            touch_poll_seconds=0.05,
            touch_lease_seconds=7,
            webhook_timeout_seconds=3,
        )
        lead_id = uuid.uuid4()
        app = create_app(settings)
        async with running(app) as nurture:
            playbooks = yaml.safe_load(default_playbooks_text())
            playbooks["playbooks"] = [ONE_EMAIL, *playbooks["playbooks"]]
            assert (await nurture.put("/v1/playbooks", json=playbooks, headers=ADMIN)).status_code == 201
            publisher = Publisher(servers.bootstrap, "test")
            try:
                event = classified("warm", lead_id=lead_id, channel="one-email")
                event.data["lead"]["channel"] = "one-email"
                await publisher.publish(
                    [(topics.LEAD_CLASSIFICATIONS, str(lead_id).encode(), event.to_bytes())]
                )
            finally:
                await publisher.stop()
            await eventually(lambda: len(held._arrived) == 1, timeout=30)  # the email is on its way

            sender = next(t for t in app.state.runtime._tasks if "TouchSender.run" in t.get_name())

            async def open_once_stopping() -> None:
                await eventually(lambda: sender.cancelling() > 0, timeout=30)
                held.everyone.set()

            opener = asyncio.create_task(open_once_stopping())
        await opener  # the app has stopped: the held send was let through while it stopped
        db_url = settings.database_url
    assert mailbox.touch_ids() and len(mailbox.touch_ids()) == 1
    db = Database(db_url, "nurture")
    try:
        async with db.transaction() as session:
            rows = (
                await session.execute(text("SELECT status FROM touches WHERE lead_id = :id"), {"id": lead_id})
            ).all()
    finally:
        await db.dispose()
    assert [r[0] for r in rows] == ["sent"], "recorded as sent: the next process will not send it again"
