"""Two real nurture processes on one database send a batch of due touches: none is sent
twice while both run. Then one is killed (SIGKILL) mid-run: every touch still arrives. A touch
the killed process had in flight may arrive again, with the same Message-ID, for the
receiver to drop: between an SMTP server's 250 and the database's commit no process can know."""

import asyncio
import email
import email.policy
import os
import signal
import subprocess
import sys
import uuid
from collections.abc import Iterator
from typing import Any

import asyncpg
import pytest
from aiosmtpd.controller import Controller

from shared.embedded import free_port
from shared.events import utcnow
from tests.conftest import Servers, eventually

TOUCHES = 600


class Mailbox:
    def __init__(self) -> None:
        self.ids: list[str] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        message = email.message_from_bytes(envelope.content, policy=email.policy.default)
        self.ids.append(str(message["Message-ID"]).strip("<>").split("@")[0])
        return "250 OK"


@pytest.fixture
def mailbox() -> Iterator[tuple[Mailbox, int]]:
    box, port = Mailbox(), free_port()
    controller = Controller(box, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield box, port
    finally:
        controller.stop()


def nurture_process(servers: Servers, smtp_port: int) -> subprocess.Popen[bytes]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("LEADFLOW_")}
    env |= {
        "LEADFLOW_DATABASE_URL": servers.database_url,
        "LEADFLOW_KAFKA_BOOTSTRAP": servers.bootstrap,
        "LEADFLOW_ADMIN_TOKEN": "test-admin-token",
        "LEADFLOW_ENV": "test",
        "LEADFLOW_NURTURE_SMTP_PORT": str(smtp_port),
        "LEADFLOW_NURTURE_TOUCH_POLL_SECONDS": "0.05",
        "LEADFLOW_NURTURE_TOUCH_LEASE_SECONDS": "7",
        "LEADFLOW_NURTURE_WEBHOOK_TIMEOUT_SECONDS": "3",
        "LEADFLOW_NURTURE_TOUCH_RETRY_SECONDS": "0.5",
    }
    command = [sys.executable, "-m", "services.nurture", "serve", "--port", str(free_port())]
    return subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


async def due_touches(servers: Servers, count: int) -> set[str]:
    connection = await asyncpg.connect(servers.database_url.replace("+asyncpg", ""))
    ids = [uuid.uuid4() for _ in range(count)]
    leads = [uuid.uuid4() for _ in range(count)]
    now = utcnow()
    try:
        await connection.copy_records_to_table(
            "followed_leads",
            schema_name="nurture",
            columns=["lead_id", "context", "playbook", "playbook_version"],
            records=[(lead, f'{{"email": "two-{lead}@example.kz"}}', "mql", 1) for lead in leads],
        )
        await connection.copy_records_to_table(
            "touches",
            schema_name="nurture",
            columns=[
                "id",
                "lead_id",
                "correlation_id",
                "playbook",
                "playbook_version",
                "step",
                "channel",
                "template",
                "due_at",
                "status",
            ],
            records=[
                (touch, lead, uuid.uuid4(), "mql", 1, 0, "email", "content", now, "scheduled")
                for touch, lead in zip(ids, leads, strict=True)
            ],
        )
    finally:
        await connection.close()
    return {str(i) for i in ids}


async def test_two_processes_one_killed_mid_run_send_every_touch_once(
    servers: Servers, mailbox: tuple[Mailbox, int]
) -> None:
    box, port = mailbox
    first, second = nurture_process(servers, port), nurture_process(servers, port)
    try:
        wanted = await due_touches(servers, TOUCHES)
        await eventually(lambda: len(set(box.ids) & wanted) >= TOUCHES // 10, timeout=60)
        so_far = [i for i in box.ids if i in wanted]
        assert len(so_far) == len(set(so_far)), "two processes never send one touch twice"
        first.send_signal(signal.SIGKILL)  # mid-run: whatever it had claimed is left leased
        await asyncio.to_thread(first.wait)
        await eventually(lambda: wanted <= set(box.ids), timeout=120, interval=0.1)  # none lost
    finally:
        for process in (first, second):
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
                await asyncio.to_thread(process.wait, 30)
    mine = [i for i in box.ids if i in wanted]
    assert len(set(mine)) == TOUCHES
    assert len(mine) - TOUCHES <= 200, "repeats only of what the killed process had claimed"
