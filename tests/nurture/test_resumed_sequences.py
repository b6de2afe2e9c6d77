"""A sequence resumed after sending was paused, or nurture was down, for days: every step
that fell due meanwhile went in the same claim, the welcome and the case study in the same
second (found by a review). The first step due goes; the ones after it keep the playbook's
spacing from when it went."""

import uuid
from datetime import datetime, timedelta
from typing import Any

import asyncpg

from services.nurture.config import NurtureSettings
from services.nurture.followup import PlaybookBook
from services.nurture.sender import TouchSender
from shared.db import Database
from shared.events import utcnow
from tests.conftest import Servers
from tests.nurture.holding import smtp_server
from tests.nurture.test_followup import zone_where_it_is

DAY = timedelta(days=1)


async def test_steps_that_fell_due_while_sending_was_paused_keep_their_spacing(servers: Servers) -> None:
    lead, address, now = uuid.uuid4(), f"{uuid.uuid4().hex[:10]}@example.kz", utcnow()
    steps = {0: ("welcome", now - 6 * DAY), 2: ("case_study", now - DAY), 4: ("offer", now + 8 * DAY)}
    with smtp_server() as mailbox:
        await _enrolled(servers, lead, address, steps)
        settings = servers.settings(NurtureSettings, smtp_port=mailbox.port)
        db = Database(settings.database_url, "nurture")
        try:
            await TouchSender(db, PlaybookBook(), settings).send_due()
        finally:
            await db.dispose()
        touches = await _touches(servers, lead)
        assert [m["Subject"] is not None for m in mailbox.to(address)] == [True]  # the welcome alone
    sent_at = touches[0]["sent_at"]
    assert touches[0]["status"] == "sent" and isinstance(sent_at, datetime)
    assert touches[2]["status"] == "scheduled"
    assert abs(touches[2]["due_at"] - (sent_at + 5 * DAY)) < timedelta(minutes=1)
    assert touches[2]["detail"].startswith("after the step before it, which went 6 days late")
    assert abs(touches[4]["due_at"] - (sent_at + 14 * DAY)) < timedelta(minutes=1)


async def _enrolled(
    servers: Servers, lead: uuid.UUID, address: str, steps: dict[int, tuple[str, datetime]]
) -> None:
    connection = await asyncpg.connect(servers.database_url.replace("+asyncpg", ""))
    try:
        await connection.execute(
            "INSERT INTO nurture.followed_leads (lead_id, context, playbook, playbook_version)"
            " VALUES ($1, jsonb_build_object('email', $2::text, 'consent', true, 'timezone', $3::text),"
            " 'warm', 1)",
            lead,
            address,
            zone_where_it_is(12),
        )
        await connection.executemany(
            "INSERT INTO nurture.touches (id, lead_id, correlation_id, playbook, playbook_version, step,"
            " channel, template, status, due_at) VALUES ($1, $2, $3, 'warm', 1, $4, 'email', $5,"
            " 'scheduled', $6)",
            [(uuid.uuid4(), lead, uuid.uuid4(), step, t, due) for step, (t, due) in steps.items()],
        )
    finally:
        await connection.close()


async def _touches(servers: Servers, lead: uuid.UUID) -> dict[int, dict[str, Any]]:
    connection = await asyncpg.connect(servers.database_url.replace("+asyncpg", ""))
    try:
        rows = await connection.fetch("SELECT * FROM nurture.touches WHERE lead_id = $1", lead)
    finally:
        await connection.close()
    return {row["step"]: dict(row) for row in rows}
