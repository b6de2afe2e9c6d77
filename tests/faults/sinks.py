"""Where the pipeline's webhooks and emails land: a real HTTP receiver and a real SMTP server on
localhost, in a process of their own (`python -m tests.faults.sinks DIR`), so that the test's
own work (the stream of leads, polling) never slows them down. Each arrival is a JSON line in
DIR, stamped with time.monotonic() (one clock for every process of the machine)."""

import asyncio
import json
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aiohttp import web
from aiosmtpd.smtp import SMTP, Envelope, Session

from shared.embedded import die_with_parent, free_port
from tests.receiver import Received

BACKLOG = 1024  # nurture sends up to 32 webhooks at once to one receiver, more after a restart
MESSAGE_ID = "Message-ID: <"
HELD = "held-"  # the first email to such an address is taken, then the answer to QUIT waits
HOLD_SECONDS = 60.0  # at most; `Sinks.release` ends the wait


class Journal:
    """Appends one JSON line per arrival."""

    def __init__(self, path: Path) -> None:
        self.file = path.open("a", encoding="utf-8")

    def write(self, record: dict[str, Any]) -> None:
        self.file.write(json.dumps({"at": time.monotonic(), **record}) + "\n")
        self.file.flush()


class Mail:
    """aiosmtpd handler: every message is taken (250) and journaled. After one to a HELD
    address the answer to QUIT waits, so its sender is caught with the email gone and its
    send not yet over."""

    def __init__(self, journal: Journal, directory: Path) -> None:
        self.journal, self.directory = journal, directory
        self.holding: set[Session] = set()  # the sessions whose QUIT is to wait
        self.held: set[str] = set()  # the addresses held once already
        self.holds = 0

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        content = envelope.content if isinstance(envelope.content, bytes) else b""
        text = content.decode(errors="replace")
        touch = text.split(MESSAGE_ID, 1)[1].split("@", 1)[0] if MESSAGE_ID in text else None
        self.journal.write({"to": envelope.rcpt_tos, "touch_id": touch})
        first = {to for to in envelope.rcpt_tos if to.startswith(HELD)} - self.held
        if first:
            self.held |= first
            self.holding.add(session)
        return "250 OK"

    async def handle_QUIT(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        if session in self.holding:
            self.holding.discard(session)
            self.holds += 1
            self.journal.write({"to": [], "touch_id": None, "quit_held": self.holds})
            released = self.directory / f"release-{self.holds}"
            deadline = time.monotonic() + HOLD_SECONDS
            while not released.exists() and time.monotonic() < deadline:
                await asyncio.sleep(0.02)  # the sender is left waiting (it may die meanwhile)
        return "221 Bye"


async def serve(directory: Path) -> None:
    hooks = Journal(directory / "webhooks.jsonl")

    async def receive(request: web.Request) -> web.Response:
        body = await request.text()
        headers = {k.lower(): v for k, v in request.headers.items()}
        hooks.write({"path": request.path, "headers": headers, "body": body})
        return web.Response(status=200)

    app = web.Application()
    app.router.add_post("/{path:.*}", receive)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    http_port, smtp_port = free_port(), free_port()
    await web.TCPSite(runner, "127.0.0.1", http_port, backlog=BACKLOG).start()
    mail = Mail(Journal(directory / "emails.jsonl"), directory)
    loop = asyncio.get_running_loop()
    await loop.create_server(
        lambda: SMTP(mail, hostname="127.0.0.1"), "127.0.0.1", smtp_port, backlog=BACKLOG
    )
    written = directory / ".ports.json"
    written.write_text(json.dumps({"http": http_port, "smtp": smtp_port}))
    written.replace(directory / "ports.json")  # in one step: the test reads it as soon as it exists
    await asyncio.Event().wait()  # until terminated


@dataclass
class Tail:
    """The records of one journal, read as it grows."""

    path: Path
    records: list[dict[str, Any]] = field(default_factory=list)
    offset: int = 0

    def read(self) -> list[dict[str, Any]]:
        if self.path.exists():
            with self.path.open("rb") as journal:
                journal.seek(self.offset)
                chunk = journal.read()
            complete = chunk[: chunk.rfind(b"\n") + 1]
            self.offset += len(complete)
            self.records += [json.loads(line) for line in complete.splitlines()]
        return self.records


class Sinks:
    """The sinks' process, seen from the test."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.process: subprocess.Popen[bytes] | None = None
        self.ports: dict[str, int] = {}
        self.hooks = Tail(directory / "webhooks.jsonl")
        self.mail = Tail(directory / "emails.jsonl")

    def start(self, timeout: float = 60) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        command = [sys.executable, "-m", "tests.faults.sinks", str(self.directory)]
        self.process = subprocess.Popen(command, preexec_fn=die_with_parent)
        ports = self.directory / "ports.json"
        deadline = time.monotonic() + timeout
        while not ports.exists():
            assert self.process.poll() is None, "the sinks' process exited"
            assert time.monotonic() < deadline, "the sinks did not start"
            time.sleep(0.05)  # polling for the process to listen
        self.ports = json.loads(ports.read_text())

    def stop(self) -> None:
        if self.process is not None:
            self.process.terminate()
            self.process.wait(10)

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.ports['http']}{path}"

    def webhooks(self, path: str) -> list[tuple[Received, float]]:
        """Each request received at `path` and when (time.monotonic()), in order."""
        return [
            (Received(r["path"], r["headers"], r["body"].encode()), r["at"])
            for r in self.hooks.read()
            if r["path"] == path
        ]

    def emails(self) -> list[dict[str, Any]]:
        """Each email received: `to` (its recipients), `touch_id` (its Message-ID), `at`."""
        return [r for r in self.mail.read() if not r.get("quit_held")]

    def quits_held(self) -> int:
        """How many times a sender was kept waiting after a HELD email."""
        return sum(1 for r in self.mail.read() if r.get("quit_held"))

    def release(self, hold: int) -> None:
        """The answer to that QUIT goes now."""
        (self.directory / f"release-{hold}").touch()


if __name__ == "__main__":
    asyncio.run(serve(Path(sys.argv[1])))
