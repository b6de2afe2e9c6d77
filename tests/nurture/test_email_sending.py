"""Follow-up emails on the wire, against real SMTP relays on localhost (aiosmtpd) that answer as
relays do: their headers (Date, Message-ID, List-Unsubscribe whole on the SMTPUTF8 path too),
an email whose data went without a final reply never sent twice, and no more SMTP sessions
at once than the relay allows."""

import asyncio
import email
import email.policy
import threading
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass, field
from email.message import EmailMessage
from email.utils import parsedate_to_datetime
from typing import Any

import asyncpg
import pytest
from aiosmtpd.controller import Controller

from services.nurture.config import NurtureSettings
from services.nurture.followup import PlaybookBook
from services.nurture.sender import TouchSender
from shared.db import Database
from shared.embedded import free_port
from shared.events import utcnow
from tests.conftest import Servers, eventually

FINAL = ("sent", "failed", "cancelled")


@dataclass
class Relay:
    """An SMTP relay on localhost that keeps every message whose data reached it (before it
    answers). After the data it answers at once ("250"), `late` seconds later ("late"), not
    before `released` is set ("hang"), or closes the connection without a word ("drop"). With
    `sessions`, a mail transaction beyond that many at once is answered 421, as relays limit
    their clients (Postfix's smtpd_client_connection_count_limit, hosted relays)."""

    port: int
    after_data: str = "250"
    late: float = 0.0
    sessions: int | None = None
    released: threading.Event = field(default_factory=threading.Event)
    received: list[bytes] = field(default_factory=list)
    arrived: list[float] = field(default_factory=list)  # time.monotonic() of each, in step
    busy: int = 0  # mail transactions under way
    most: int = 0
    refused: int = 0
    rcpt_answers: list[str] = field(default_factory=list)  # given to the next RCPTs instead of 250

    async def handle_MAIL(self, server: Any, session: Any, envelope: Any, address: str, options: Any) -> str:
        if self.sessions is not None and self.busy >= self.sessions:
            self.refused += 1
            return "421 4.7.0 Too many concurrent SMTP connections; try again later"
        self.busy += 1
        self.most = max(self.most, self.busy)
        envelope.mail_from = address
        envelope.mail_options.extend(options)
        return "250 OK"

    async def handle_RCPT(self, server: Any, session: Any, envelope: Any, address: str, options: Any) -> str:
        if self.rcpt_answers:  # refused, for now or for good
            self.busy -= 1
            return self.rcpt_answers.pop(0)
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.received.append(envelope.original_content or envelope.content)
        self.arrived.append(time.monotonic())
        if self.after_data == "late":
            await asyncio.sleep(self.late)  # the relay's content filter at work
        elif self.after_data == "hang":
            await asyncio.to_thread(self.released.wait, 60)
        elif self.after_data == "drop":
            server.transport.abort()
        self.busy -= 1
        return "250 OK"

    def messages(self) -> list[EmailMessage]:
        parsed = [email.message_from_bytes(raw, policy=email.policy.default) for raw in self.received]
        return [m for m in parsed if isinstance(m, EmailMessage)]


@contextmanager
def relay(**behaviour: Any) -> Iterator[Relay]:
    box = Relay(free_port(), **behaviour)
    controller = Controller(box, hostname="127.0.0.1", port=box.port, enable_SMTPUTF8=True)
    controller.start()
    try:
        yield box
    finally:
        box.released.set()
        controller.stop()


@asynccontextmanager
async def sender(servers: Servers, box: Relay, **settings: Any) -> AsyncIterator[None]:
    """A touch sender's loop running against `box`, as a nurture process runs its own."""
    options = {"touch_poll_seconds": 0.05, "touch_lease_seconds": 30, "webhook_timeout_seconds": 3}
    options |= {"touch_retry_seconds": 0.2, **settings}
    values = servers.settings(NurtureSettings, smtp_port=box.port, **options)
    db = Database(values.database_url, "nurture")
    task = asyncio.create_task(TouchSender(db, PlaybookBook(), values).run())
    try:
        yield
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        await db.dispose()


async def due_emails(servers: Servers, addresses: list[str]) -> list[str]:
    """A lead for each address with one email due now; returns the touches' ids in order."""
    leads, ids = [uuid.uuid4() for _ in addresses], [uuid.uuid4() for _ in addresses]
    connection = await asyncpg.connect(servers.database_url.replace("+asyncpg", ""))
    try:
        await connection.executemany(
            "INSERT INTO nurture.followed_leads (lead_id, context, playbook, playbook_version)"
            " VALUES ($1, jsonb_build_object('email', $2::text, 'consent', true), 'mql', 1)",
            list(zip(leads, addresses, strict=True)),
        )
        await connection.executemany(
            "INSERT INTO nurture.touches (id, lead_id, correlation_id, playbook, playbook_version, step,"
            " channel, template, status, due_at) VALUES ($1, $2, $3, 'mql', 1, 0, 'email', 'content',"
            " 'scheduled', now())",
            [(i, lead, uuid.uuid4()) for i, lead in zip(ids, leads, strict=True)],
        )
    finally:
        await connection.close()
    return [str(i) for i in ids]


async def outcomes(servers: Servers, ids: list[str]) -> dict[str, tuple[str, int, str | None]] | None:
    """Each touch's status, attempts and detail once every one of them is done; else None."""
    connection = await asyncpg.connect(servers.database_url.replace("+asyncpg", ""))
    try:
        query = "SELECT id, status, attempts, detail FROM nurture.touches WHERE id = any($1::uuid[])"
        rows = await connection.fetch(query, ids)
    finally:
        await connection.close()
    found = {str(r["id"]): (r["status"], r["attempts"], r["detail"]) for r in rows}
    return found if all(status in FINAL for status, _, _ in found.values()) else None


async def test_an_email_has_a_date_and_a_message_id_on_the_senders_domain(servers: Servers) -> None:
    """RFC 5322 asks for a Date; relays do not add one to mail from network clients, and spam
    filters score its absence. The Message-ID's right side was `leadflow`, with no dot."""
    with relay() as box:
        before = utcnow().replace(microsecond=0)
        async with sender(servers, box, email_from="Leadflow <hello@mail.example.kz>"):
            [touch] = await due_emails(servers, [f"dated-{uuid.uuid4().hex[:8]}@example.kz"])
            await eventually(lambda: outcomes(servers, [touch]), timeout=20)
        [message] = box.messages()
    assert message["Date"] is not None
    assert before <= parsedate_to_datetime(message["Date"]) <= utcnow()
    assert message["Message-ID"] == f"<{touch}@mail.example.kz>"


@pytest.mark.parametrize("address", ["аружан@example.kz", "aruzhan@мысал.kz"])
async def test_the_unsubscribe_headers_stay_whole_on_an_address_beyond_ascii(
    servers: Servers, address: str
) -> None:
    """On the SMTPUTF8 path the List-Unsubscribe header, longer than 78 characters with no space
    to fold at, was written as RFC 2047 encoded words (=?utf-8?q?=3Chttp...), which RFC 2369 and
    8058 do not allow: mail clients offered these people no one-click unsubscribe."""
    with relay() as box:
        async with sender(servers, box):
            await due_emails(servers, [address])
            await eventually(lambda: box.received, timeout=20)
    [raw] = box.received
    head = raw.split(b"\r\n\r\n", 1)[0].decode()
    unsubscribe = next(line for line in head.split("\r\n") if line.startswith("List-Unsubscribe:"))
    assert unsubscribe.startswith("List-Unsubscribe: <http://") and unsubscribe.endswith(">"), unsubscribe
    assert "List-Unsubscribe-Post: List-Unsubscribe=One-Click\r\n" in head
    [message] = box.messages()
    assert message["To"] == address
    assert message["List-Unsubscribe"].strip("<>") in message.get_content()


async def test_an_email_whose_relay_answers_after_the_webhook_timeout_is_sent_once(servers: Servers) -> None:
    """The relay takes the data and answers 250 three times the webhook timeout later (content
    filters and busy relays do): the email was called not sent at the timeout and sent again
    a retry later, until it failed after three copies."""
    with relay(after_data="late", late=3.0) as box:
        async with sender(servers, box, webhook_timeout_seconds=1):
            [touch] = await due_emails(servers, [f"slow-{uuid.uuid4().hex[:8]}@example.kz"])
            done = await eventually(lambda: outcomes(servers, [touch]), timeout=30)
    assert len(box.received) == 1, f"{len(box.received)} copies; the touch: {done}"
    assert done[touch][:2] == ("sent", 1)


@pytest.mark.parametrize(
    "limit",
    [
        {"smtp_reply_timeout_seconds": 1.0},  # its own timeout
        {"touch_lease_seconds": 6, "smtp_reply_timeout_seconds": 90.0},  # the touch's claim ends first
    ],
    ids=["reply timeout", "claim"],
)
async def test_an_email_whose_data_went_without_a_final_reply_fails_in_doubt(
    servers: Servers, limit: dict[str, float]
) -> None:
    """No final reply after the data, within the reply timeout and inside the touch's claim:
    the relay may have the email, and it is not sent again (README "Never twice")."""
    with relay(after_data="hang") as box:
        async with sender(servers, box, webhook_timeout_seconds=1, **limit):
            [touch] = await due_emails(servers, [f"hung-{uuid.uuid4().hex[:8]}@example.kz"])
            done = await eventually(lambda: outcomes(servers, [touch]), timeout=30)
            box.released.set()
    status, attempts, detail = done[touch]
    assert len(box.received) == 1, f"{len(box.received)} copies; the touch: {done}"
    assert (status, attempts) == ("failed", 1)
    assert detail is not None and detail.startswith("in doubt: the SMTP server took this email's data")


async def test_an_email_whose_connection_drops_after_its_data_fails_in_doubt(servers: Servers) -> None:
    """The relay keeps the message and closes the connection before its reply: "SMTP:
    Unexpected EOF received" was taken for not sent, and a second copy went a retry later."""
    with relay(after_data="drop") as box:
        async with sender(servers, box, webhook_timeout_seconds=1):
            [touch] = await due_emails(servers, [f"dropped-{uuid.uuid4().hex[:8]}@example.kz"])
            done = await eventually(lambda: outcomes(servers, [touch]), timeout=30)
    status, attempts, detail = done[touch]
    assert len(box.received) == 1, f"{len(box.received)} copies; the touch: {done}"
    assert (status, attempts) == ("failed", 1)
    assert detail is not None and detail.startswith("in doubt: ")


async def test_a_batch_of_emails_keeps_to_the_sessions_a_relay_allows(servers: Servers) -> None:
    """A batch of welcome emails went out at once, each on a connection of its own (up to 200);
    a relay allowing fewer sessions answered 421 to the rest, and after three attempts over three
    minutes half of them were lost. Now at most LEADFLOW_NURTURE_SMTP_SESSIONS at once."""
    with relay(after_data="late", late=0.1, sessions=3) as box:
        async with sender(servers, box, smtp_sessions=3):
            many = [f"welcome-{n}-{uuid.uuid4().hex[:8]}@example.kz" for n in range(24)]
            touches = await due_emails(servers, many)
            done = await eventually(lambda: outcomes(servers, touches), timeout=60)
    assert (box.refused, box.most) == (0, 3), "no more sessions than the relay allows"
    assert sorted(done.values()) == [("sent", 1, None)] * len(many)
    assert len(box.received) == len(many)


async def test_an_email_that_waited_past_its_claim_for_a_session_goes_next_without_losing_an_attempt(
    servers: Servers,
) -> None:
    """One session, two emails, and the relay gives the first no final reply: the first holds
    the session until its claim ends (in doubt); the second, still waiting its turn, never
    reached the relay then, so it is taken again at once with its attempts as they were."""
    with relay(after_data="hang") as box:
        settings = {"smtp_sessions": 1, "touch_lease_seconds": 6, "webhook_timeout_seconds": 1}
        async with sender(servers, box, **settings):
            touches = await due_emails(
                servers, [f"turn-{n}-{uuid.uuid4().hex[:8]}@example.kz" for n in range(2)]
            )
            done = await eventually(lambda: outcomes(servers, touches), timeout=40)
            box.released.set()
    assert len(box.received) == 2, f"{len(box.received)} copies; the touches: {done}"
    first, second = box.arrived
    assert second - first > 3, "the second only once the first's claim (6 s, less 1) was over"
    assert sorted((status, attempts) for status, attempts, _ in done.values()) == [("failed", 1)] * 2


async def test_an_address_the_relay_refuses_for_good_is_not_tried_again(servers: Servers) -> None:
    """A 550 (user unknown) was retried as a 451 is: sending again to an address a server
    refused for good costs the sender its reputation (found by an outside review)."""
    with relay(rcpt_answers=["550 5.1.1 User unknown"]) as box:
        async with sender(servers, box):
            [touch] = await due_emails(servers, [f"gone-{uuid.uuid4().hex[:8]}@example.kz"])
            done = await eventually(lambda: outcomes(servers, [touch]), timeout=20)
    status, attempts, detail = done[touch]
    assert (status, attempts) == ("failed", 1) and "550" in (detail or "")


async def test_a_relay_refusing_for_a_while_gets_the_email_when_it_is_back(servers: Servers) -> None:
    """Three attempts over three minutes lost touches to a provider's short outage for good
    (found by an outside review): a touch is tried `touch_attempts` times (8), waits doubling."""
    with relay(rcpt_answers=["451 4.3.0 Try again later"] * 4) as box:
        async with sender(servers, box, touch_retry_seconds=0.05):
            [touch] = await due_emails(servers, [f"later-{uuid.uuid4().hex[:8]}@example.kz"])
            done = await eventually(lambda: outcomes(servers, [touch]), timeout=30)
    assert done[touch][:2] == ("sent", 5)
    assert len(box.received) == 1
