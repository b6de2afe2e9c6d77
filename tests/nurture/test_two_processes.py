"""Two senders on one database share the due touches and send each once, and what one that
dies had in flight is never emailed twice: in one process (two senders, and the claim of a
third that died), and as two real nurture processes, one killed (SIGKILL) mid-run. Each
sender has its own SMTP server, so who sent what is plain, and each one's sends wait until
the other's are under way too, so both really take part. Between an SMTP server's 250 and the
database's commit no process can know whether an email left, so an email whose sender died
with it claimed fails as in doubt once its lease runs out, rather than going twice."""

import asyncio
import os
import signal
import subprocess
import sys
import threading
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from datetime import datetime, timedelta

import asyncpg
import httpx
import pytest

from services.nurture.config import NurtureSettings
from services.nurture.followup import PlaybookBook
from services.nurture.sender import TouchSender
from services.nurture.touch_claims import BATCH, BUSY, IN_DOUBT, claim_due
from shared.db import Database
from shared.embedded import free_port
from shared.events import utcnow
from tests.conftest import Servers, eventually
from tests.nurture.holding import Holding, Mailbox, Together, smtp_server

TOUCHES = 600
LEASE = timedelta(seconds=21)
SENDING = {  # a send, however slow this machine, ends (10 s) well inside its lease
    "touch_poll_seconds": 0.05,
    "touch_lease_seconds": LEASE.total_seconds(),
    "webhook_timeout_seconds": 10,
    "touch_retry_seconds": 0.5,
}


@pytest.fixture
def mailboxes() -> Iterator[tuple[Mailbox, Mailbox]]:
    together = Together(2)
    with smtp_server(together) as first, smtp_server(together) as second:
        yield first, second


def sent(box: Mailbox, wanted: set[str]) -> list[str]:
    """The wanted touches this mailbox received, repeats included."""
    return [touch for touch in box.touch_ids() if touch in wanted]


def received(*boxes: Mailbox) -> set[str]:
    return {touch for box in boxes for touch in box.touch_ids()}


async def statuses(servers: Servers, ids: set[str]) -> dict[str, str]:
    connection = await asyncpg.connect(servers.database_url.replace("+asyncpg", ""))
    try:
        query = "SELECT id, status FROM nurture.touches WHERE id = any($1::uuid[])"
        return {str(row["id"]): row["status"] for row in await connection.fetch(query, list(ids))}
    finally:
        await connection.close()


async def recorded_sent(servers: Servers, ids: set[str]) -> bool:
    """Every one of these touches is marked sent (no sender is still between send and record)."""
    return set((await statuses(servers, ids)).values()) == {"sent"}


async def details(servers: Servers, ids: set[str]) -> dict[str, tuple[str, str | None]]:
    connection = await asyncpg.connect(servers.database_url.replace("+asyncpg", ""))
    try:
        query = "SELECT id, status, detail FROM nurture.touches WHERE id = any($1::uuid[])"
        return {str(r["id"]): (r["status"], r["detail"]) for r in await connection.fetch(query, list(ids))}
    finally:
        await connection.close()


async def due_touches(servers: Servers, count: int, due_at: datetime | None = None) -> set[str]:
    connection = await asyncpg.connect(servers.database_url.replace("+asyncpg", ""))
    ids = [uuid.uuid4() for _ in range(count)]
    leads = [uuid.uuid4() for _ in range(count)]
    try:
        await connection.copy_records_to_table(
            "followed_leads",
            schema_name="nurture",
            columns=["lead_id", "context", "playbook", "playbook_version"],
            records=[
                (lead, f'{{"email": "two-{lead}@example.kz", "consent": true}}', "mql", 1) for lead in leads
            ],
        )
        columns = ["id", "lead_id", "correlation_id", "playbook", "playbook_version", "step"]
        columns += ["channel", "template", "due_at", "status"]
        due = due_at or utcnow()
        records = [
            (i, lead, uuid.uuid4(), "mql", 1, 0, "email", "content", due, "scheduled")
            for i, lead in zip(ids, leads, strict=True)
        ]
        await connection.copy_records_to_table(
            "touches", schema_name="nurture", columns=columns, records=records
        )
    finally:
        await connection.close()
    return {str(i) for i in ids}


@asynccontextmanager
async def sending(*senders: TouchSender) -> AsyncIterator[None]:
    """Each sender's loop running, as a nurture process runs its own."""
    tasks = [asyncio.create_task(sender.run()) for sender in senders]
    try:
        yield
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


async def orphaned_touches(servers: Servers, db: Database, settings: NurtureSettings, count: int) -> set[str]:
    """Touches a sender claimed a lease ago, before its process died: the lease has just run out."""
    ids = await due_touches(servers, count, due_at=utcnow() - 2 * LEASE)
    async with db.transaction() as session:
        claimed = await claim_due(session, utcnow() - LEASE, settings.touch_lease_seconds)
    assert ids <= {str(c.touch.id) for c in claimed}
    return ids


async def test_two_senders_share_the_touches_and_a_dead_ones_claimed_emails_are_not_sent_twice(
    servers: Servers, mailboxes: tuple[Mailbox, Mailbox]
) -> None:
    settings = servers.settings(NurtureSettings, **SENDING)
    db, book = Database(settings.database_url, "nurture"), PlaybookBook()
    try:
        orphaned = await orphaned_touches(servers, db, settings, 50)
        wanted = await due_touches(servers, BATCH + 50)  # more than one sender takes at once
        own = [settings.model_copy(update={"smtp_port": box.port}) for box in mailboxes]
        async with sending(*(TouchSender(db, book, s) for s in own)):
            await eventually(lambda: wanted <= received(*mailboxes), timeout=60)
            await eventually(lambda: recorded_sent(servers, wanted), timeout=30)

            async def in_doubt() -> bool:
                return set((await details(servers, orphaned)).values()) == {("failed", IN_DOUBT)}

            await eventually(in_doubt, timeout=30)
    finally:
        await db.dispose()
    first, second = (sent(box, wanted) for box in mailboxes)
    assert first and second, "both senders sent"
    assert sorted(first + second) == sorted(wanted), "every touch sent, none twice"
    assert not orphaned & received(*mailboxes), "what the dead sender held may have left: not sent again"


async def weekly_cap(db: Database) -> int:
    async with db.transaction() as session:
        return (await PlaybookBook().active(session)).value.weekly_cap


async def lead_with_emails(servers: Servers, sent: int, due: list[timedelta]) -> list[str]:
    """A lead with `sent` emails sent an hour ago and one due at each of `due` from now; returns
    the due ones' ids."""
    lead, now = uuid.uuid4(), utcnow()
    hour_ago = now - timedelta(hours=1)
    rows = [(uuid.uuid4(), "sent", hour_ago, hour_ago) for _ in range(sent)]
    rows += [(uuid.uuid4(), "scheduled", now + after, None) for after in due]
    connection = await asyncpg.connect(servers.database_url.replace("+asyncpg", ""))
    try:
        await connection.execute(
            "INSERT INTO nurture.followed_leads (lead_id, context, playbook, playbook_version)"
            " VALUES ($1, $2, 'mql', 1)",
            lead,
            f'{{"email": "capped-{lead}@example.kz", "consent": true}}',
        )
        await connection.executemany(
            "INSERT INTO nurture.touches (id, lead_id, correlation_id, playbook, playbook_version, step,"
            " channel, template, status, due_at, sent_at) VALUES ($1, $2, $3, 'mql', 1, $4, 'email',"
            " 'content', $5, $6, $7)",
            [
                (i, lead, uuid.uuid4(), n, status, at, sent_at)
                for n, (i, status, at, sent_at) in enumerate(rows)
            ],
        )
    finally:
        await connection.close()
    return [str(row[0]) for row in rows[sent:]]


async def test_two_senders_never_count_one_leads_weekly_cap_at_once(servers: Servers) -> None:
    """One sender is sending a lead's email (held at the SMTP server) when another takes the
    lead's next one: the second does not send it while the first holds the lead, and once the
    first is recorded, finds the cap reached and moves the email to next week. (Both used to
    count the cap before either had recorded a send, and both went: one over the cap.)"""
    gate = threading.Event()
    with smtp_server(gate=gate) as box:
        settings = servers.settings(NurtureSettings, **SENDING, smtp_port=box.port)
        db, book = Database(settings.database_url, "nurture"), PlaybookBook()
        try:
            one_short = await weekly_cap(db) - 1
            first, second = await lead_with_emails(servers, one_short, [timedelta(0), timedelta(seconds=1)])
            async with sending(TouchSender(db, book, settings), TouchSender(db, book, settings)):
                await eventually(lambda: taken_while_held(servers, first, second), timeout=20)
                gate.set()

                async def settled() -> dict[str, tuple[str, datetime]] | None:
                    found = await due(servers, {first, second})
                    moved = found[second][0] == "scheduled" and found[second][1] > utcnow() + timedelta(
                        days=1
                    )
                    return found if found[first][0] == "sent" and moved else None

                await eventually(settled, timeout=30)
        finally:
            await db.dispose()
    assert len(box.received) == 1


async def test_sends_whose_record_lost_its_connection_are_recorded_in_another_transaction(
    servers: Servers,
) -> None:
    """The database connection of the transaction sending a batch is lost while an email is
    at the SMTP server: the email is recorded sent, and an email of the batch moved to next
    week for its lead's cap stays moved, in another transaction, rather than both being left
    to fail "in doubt" once the lease runs out."""
    gate = Holding()
    with smtp_server(gate=gate) as box:
        settings = servers.settings(NurtureSettings, **SENDING, smtp_port=box.port)
        db = Database(settings.database_url, "nurture")
        try:
            [going] = await lead_with_emails(servers, 0, [timedelta(0)])
            [capped] = await lead_with_emails(servers, await weekly_cap(db), [timedelta(0)])
            batch = asyncio.create_task(TouchSender(db, PlaybookBook(), settings).send_due())
            await eventually(lambda: gate.held >= 1, timeout=20)
            assert await lose_the_sending_connection(servers) == 1
            gate.set()
            await batch
        finally:
            await db.dispose()
    found = await due(servers, {going, capped})
    assert found[going][0] == "sent"
    assert found[capped][0] == "scheduled" and found[capped][1] > utcnow() + timedelta(days=1)
    assert len(box.received) == 1


async def lose_the_sending_connection(servers: Servers) -> int:
    """Terminate nurture's backends that are in a transaction, waiting on their client (the
    sender's, while it sends); returns how many."""
    connection = await asyncpg.connect(servers.database_url.replace("+asyncpg", ""))
    try:
        query = (
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity"
            " WHERE state = 'idle in transaction' AND application_name = 'leadflow-nurture'"
        )
        return int(await connection.fetchval(query))
    finally:
        await connection.close()


async def taken_while_held(servers: Servers, first: str, second: str) -> bool:
    """The first email held at the SMTP server, and the second taken by the other sender: being
    sent too (as it was), or put back because the first's sender holds the lead."""
    found = await details(servers, {first, second})
    return found[first][0] == "sending" and (found[second][0] == "sending" or found[second][1] == BUSY)


async def due(servers: Servers, ids: set[str]) -> dict[str, tuple[str, datetime]]:
    connection = await asyncpg.connect(servers.database_url.replace("+asyncpg", ""))
    try:
        query = "SELECT id, status, due_at FROM nurture.touches WHERE id = any($1::uuid[])"
        return {str(r["id"]): (r["status"], r["due_at"]) for r in await connection.fetch(query, list(ids))}
    finally:
        await connection.close()


def nurture_process(servers: Servers, smtp_port: int) -> tuple[subprocess.Popen[bytes], str]:
    """`python -m services.nurture serve` on a free port; returns the process and its URL."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("LEADFLOW_")}
    env |= {f"LEADFLOW_NURTURE_{name.upper()}": str(value) for name, value in SENDING.items()}
    env |= {
        "LEADFLOW_DATABASE_URL": servers.database_url,
        "LEADFLOW_KAFKA_BOOTSTRAP": servers.bootstrap,
        "LEADFLOW_ADMIN_TOKEN": "test-admin-token",
        "LEADFLOW_ENV": "test",
        "LEADFLOW_NURTURE_SMTP_PORT": str(smtp_port),
    }
    port = free_port()
    command = [sys.executable, "-m", "services.nurture", "serve", "--port", str(port)]
    process = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return process, f"http://127.0.0.1:{port}"


async def serving(url: str) -> bool:
    try:
        async with httpx.AsyncClient() as client:
            return (await client.get(f"{url}/healthz")).status_code == 200
    except httpx.TransportError:
        return False


@asynccontextmanager
async def nurture_processes(
    servers: Servers, boxes: tuple[Mailbox, ...]
) -> AsyncIterator[list[subprocess.Popen[bytes]]]:
    """A real nurture process for each mailbox, each serving (so sending) before this yields."""
    started = [nurture_process(servers, box.port) for box in boxes]
    try:
        for _, url in started:
            await eventually(lambda url=url: serving(url), timeout=60, interval=0.1)
        yield [process for process, _ in started]
    finally:
        for process, _ in started:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
                await asyncio.to_thread(process.wait, 30)


async def test_two_processes_one_killed_mid_run_send_no_touch_twice(
    servers: Servers, mailboxes: tuple[Mailbox, Mailbox]
) -> None:
    killed_box, survivor_box = mailboxes
    async with nurture_processes(servers, mailboxes) as (first, _):
        wanted = await due_touches(servers, TOUCHES)
        await eventually(lambda: both_sent_some(mailboxes, wanted), timeout=60)
        so_far = sent(killed_box, wanted) + sent(survivor_box, wanted)
        assert len(so_far) == len(set(so_far)), "while both run, no touch is sent twice"
        first.send_signal(signal.SIGKILL)  # mid-run: whatever it had claimed is left leased
        await asyncio.to_thread(first.wait)
        in_flight = {
            touch for touch, status in (await statuses(servers, wanted)).items() if status == "sending"
        }

        async def settled() -> bool:  # the in-flight ones fail as in doubt once their lease runs out
            return all(status in ("sent", "failed") for status in (await statuses(servers, wanted)).values())

        await eventually(settled, timeout=120, interval=0.1)
        outcome = await details(servers, wanted)
    by_killed, by_survivor = sent(killed_box, wanted), sent(survivor_box, wanted)
    everything = by_killed + by_survivor
    assert len(everything) == len(set(everything)), "no touch sent twice"
    doubted = {touch for touch, (status, detail) in outcome.items() if status == "failed"}
    assert all(outcome[touch] == ("failed", IN_DOUBT) for touch in doubted), outcome
    assert doubted <= in_flight, "only what the killed one had in flight is in doubt"
    assert wanted - in_flight <= set(everything), "every touch not in flight was sent"
    assert {t for t, (status, _) in outcome.items() if status == "sent"} <= set(everything)


def both_sent_some(boxes: tuple[Mailbox, Mailbox], wanted: set[str]) -> bool:
    first, second = (sent(box, wanted) for box in boxes)
    return bool(first and second) and len(first) + len(second) >= TOUCHES // 10
