"""A steady stream of new people posted to ingest (about 50 a second, a third of them hot),
each retried with its own Idempotency-Key on a connection error or a 5xx until it is answered
202, as a form integration would. Runs in a thread of its own, with its own event loop."""

import asyncio
import json
import threading
import time
from collections import Counter
from dataclasses import dataclass, field

import aiohttp

TIMEFRAMES = {"hot": "immediately", "warm": "about two months", "cold": "none"}
RETRY_FIRST, RETRY_MOST = 0.2, 2.0  # a client's backoff between tries; Retry-After up to RETRY_MOST
GIVE_UP_SECONDS = 150.0  # a lead still unanswered after this long is abandoned (and fails the test)


@dataclass
class Lead:
    """One person of the stream and what ingest answered."""

    index: int
    email: str
    temperature: str  # what its timeframe makes it
    idempotency_key: str
    lead_id: str | None = None
    status: str | None = None  # "accepted" (a new person), as ingest said
    tries: int = 0
    first_sent: float = 0.0  # time.monotonic()
    answered: float | None = None  # time.monotonic() of the 202

    def answer(self, body: dict[str, str]) -> None:
        """Ingest's 202."""
        self.lead_id, self.status, self.answered = body["lead_id"], body["status"], time.monotonic()

    def body(self) -> dict[str, object]:
        return {
            "email": self.email,
            "first_name": "Аружан",
            "company": "Qazaq Trade",
            "timeframe": TIMEFRAMES[self.temperature],
            "consent": True,  # the form's box, ticked: follow-up may write to them
            "utm": {"source": "faults"},
        }


@dataclass
class Stream:
    url: str  # ingest's POST /v1/leads
    key: str  # the source key
    tag: str  # makes every email of this stream new
    rate: float = 50.0
    leads: list[Lead] = field(default_factory=list)
    answers: Counter[str] = field(default_factory=Counter)  # "202", "503", "ConnectError"...
    refused: list[str] = field(default_factory=list)  # answers no retry can fix (4xx)
    began: float = 0.0  # time.monotonic() of the first post
    ended: float = 0.0  # of the last one
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=lambda: asyncio.run(self._run()), daemon=True)
        self._thread.start()

    def stop(self, timeout: float = GIVE_UP_SECONDS + 30) -> None:
        """No new leads; returns once every lead sent has its answer (or was abandoned)."""
        self._stop.set()
        assert self._thread is not None
        self._thread.join(timeout)
        assert not self._thread.is_alive(), "the stream's clients did not finish"

    def accepted(self) -> list[Lead]:
        return [lead for lead in list(self.leads) if lead.lead_id is not None]

    def accepted_since(self, moment: float) -> int:
        return sum(1 for lead in list(self.leads) if lead.answered is not None and lead.answered > moment)

    def abandoned(self) -> list[Lead]:
        return [lead for lead in self.leads if lead.lead_id is None]

    def retried(self) -> int:
        return sum(lead.tries - 1 for lead in self.leads if lead.tries > 1)

    def figures(self) -> dict[str, object]:
        seconds = self.ended - self.began
        return {
            "posted": len(self.leads),
            "stream_seconds": round(seconds, 1),
            "leads_per_second": round(len(self.leads) / seconds, 1) if seconds else None,
            "retried_requests": self.retried(),
            "abandoned": len(self.abandoned()),
            "refused": len(self.refused),
            "answers": dict(self.answers),
        }

    def new_lead(self, index: int) -> Lead:
        temperature = ("hot", "warm", "cold")[index % 3]
        email = f"{self.tag}-{index}@faults.example.kz"
        return Lead(index, email, temperature, idempotency_key=f"{self.tag}-{index}")

    async def _run(self) -> None:
        # aiohttp: an httpx client costs twice the CPU per request, and this shares the machine.
        connector = aiohttp.TCPConnector(limit=200)
        timeout = aiohttp.ClientTimeout(total=10)
        async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:
            tasks = []
            self.began = time.monotonic()
            while not self._stop.is_set():
                lead = self.new_lead(len(self.leads))
                self.leads.append(lead)
                tasks.append(asyncio.create_task(self._post(session, lead)))
                pause = self.began + len(self.leads) / self.rate - time.monotonic()
                await asyncio.sleep(max(pause, 0))  # pacing the arrivals (open loop)
            self.ended = time.monotonic()
            await asyncio.gather(*tasks)

    async def _post(self, session: aiohttp.ClientSession, lead: Lead) -> None:
        headers = {"X-Source-Key": self.key, "Idempotency-Key": lead.idempotency_key}
        lead.first_sent = time.monotonic()
        backoff = RETRY_FIRST
        while time.monotonic() - lead.first_sent < GIVE_UP_SECONDS:
            lead.tries += 1
            wait = backoff
            try:
                async with session.post(self.url, json=lead.body(), headers=headers) as answer:
                    status, text = answer.status, await answer.text()
                    retry_after = answer.headers.get("retry-after")
            except (aiohttp.ClientError, TimeoutError) as error:
                self.answers[type(error).__name__] += 1
            else:
                self.answers[str(status)] += 1
                if status == 202:
                    lead.answer(json.loads(text))
                    return
                if status < 500 and status != 429:
                    self.refused.append(f"{status} {text[:300]}")
                    return
                wait = float(retry_after or backoff)
            await asyncio.sleep(min(wait, RETRY_MOST))  # the client's backoff before its retry
            backoff = min(backoff * 2, RETRY_MOST)
