"""Real localhost servers for the nurture tests, and ways to hold what is sent to them: a
receiver's gate that counts the requests it holds, and SMTP mailboxes that hold every send
until each mailbox of a group has one, so several senders are seen sending at once."""

import asyncio
import email
import email.policy
import re
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from email.message import Message
from typing import Any

from aiosmtpd.controller import Controller

from shared.embedded import free_port


class Holding(threading.Event):
    """A receiver's gate (tests.receiver) that counts the requests held at it, unanswered,
    until it opens."""

    def __init__(self) -> None:
        super().__init__()
        self.held = 0
        self._lock = threading.Lock()

    def wait(self, timeout: float | None = None) -> bool:
        with self._lock:
            self.held += 1
        return super().wait(timeout)


class Together:
    """Holds each send at every mailbox of the group until each of them has one."""

    def __init__(self, size: int) -> None:
        self.size = size
        self.everyone = threading.Event()
        self._arrived: set[int] = set()
        self._lock = threading.Lock()

    async def arrive(self, mailbox: "Mailbox") -> None:
        if self.everyone.is_set():
            return
        with self._lock:
            self._arrived.add(id(mailbox))
            if len(self._arrived) == self.size:
                self.everyone.set()
        # Held before the message is taken: a sender that gives up has delivered nothing.
        await asyncio.to_thread(self.everyone.wait, 30)


MESSAGE_ID = re.compile(rb"^Message-ID: <([^@>]+)@", re.MULTILINE | re.IGNORECASE)


@dataclass
class Mailbox:
    port: int
    together: Together | None = None
    gate: threading.Event | None = None  # when given, every send waits at it until it is set
    received: list[bytes] = field(default_factory=list)
    arrived: list[float] = field(default_factory=list)  # time.monotonic() of each, in step
    _parsed: list[Message] = field(default_factory=list)

    async def handle_RCPT(self, server: Any, session: Any, envelope: Any, address: str, options: Any) -> str:
        if self.together is not None:
            await self.together.arrive(self)
        if self.gate is not None:
            await asyncio.to_thread(self.gate.wait, 30)
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.arrived.append(time.monotonic())
        self.received.append(envelope.content)  # parsed when asked for: parsing here slows every send
        return "250 OK"

    @property
    def messages(self) -> list[Message]:
        for content in self.received[len(self._parsed) :]:
            self._parsed.append(email.message_from_bytes(content, policy=email.policy.default))
        return list(self._parsed)

    def to(self, address: str) -> list[Message]:
        return [m for m in self.messages if m["To"] == address]

    def touch_ids(self) -> list[str]:
        """The touch of every message, in order, repeats included (the Message-ID carries it)."""
        return [touch for touch, _ in self.arrivals()]

    def arrivals(self) -> list[tuple[str, float]]:
        """Each message's touch and when it arrived (time.monotonic()), in order."""
        found = zip(list(self.received), self.arrived, strict=False)
        return [
            (match.group(1).decode(), at) for content, at in found if (match := MESSAGE_ID.search(content))
        ]


@contextmanager
def smtp_server(together: Together | None = None, gate: threading.Event | None = None) -> Iterator[Mailbox]:
    """An SMTP server on localhost that keeps every message it is sent."""
    box = Mailbox(free_port(), together=together, gate=gate)
    controller = Controller(box, hostname="127.0.0.1", port=box.port)
    controller.start()
    try:
        yield box
    finally:
        if together is not None:
            together.everyone.set()
        if gate is not None:
            gate.set()
        controller.stop()
