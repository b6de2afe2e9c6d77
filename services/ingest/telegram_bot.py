"""The company's Telegram bot answering a person (`telegram_replies`): a sendMessage to the Bot
API (LEADFLOW_TELEGRAM_API_URL, an operator's setting, never an address from a request) with
the source's own bot token.

A reply is kept in `telegram_replies` in the update's own transaction (`keep`), leased to this
process for its first try, and sent once that transaction committed, in the background:
Telegram's webhook is answered at once whatever becomes of it, and sends it again after any
answer but a 2xx. The row goes once the Bot API took the reply. A try that failed with no
answer (a timeout, a refused connection), a 5xx or a 429 is tried again by `run` on
`telegram_replies.RETRY_SCHEDULE`, or after the 429's `parameters.retry_after` when that is
longer, by whichever replica claims it first (a lease, as nurture's webhooks); given up after
the schedule's tries or a day. Any other 4xx (403: the person blocked the bot; 401: a wrong
token) is not tried again, nor a reply whose source has no token any more. A thanks drops the
chat's asks still waiting: the person gave their contact. Every try that fails is logged (the
source and what failed: no token, nothing of the person's) and counted,
`leadflow_ingest_telegram_replies_total{outcome}`: `sent`, `failed` (each failed try) and
`given_up`."""

import asyncio
import json
import logging
import random
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from uuid import UUID, uuid4

import aiohttp
from prometheus_client import CollectorRegistry, Counter
from sqlalchemy import text
from sqlmodel.ext.asyncio.session import AsyncSession

from services.ingest.models import Source, TelegramReply
from services.ingest.telegram_replies import Reply, next_try, worth_retrying
from shared import outgoing
from shared.db import Database, defer_insert
from shared.faults import raise_hidden_stop
from shared.redact import describe
from shared.sealing import SecretBox

log = logging.getLogger(__name__)
CLAIM = 50  # replies claimed, and sent at once, by one turn of the retry loop
LEASE_MARGIN = timedelta(seconds=30)  # beyond a send's timeout: a claim outlives its try
MAX_RETRY_AFTER = 86400.0  # a `retry_after` read as at most a day (the reply is given up then)
_TABLE = TelegramReply.__table__  # type: ignore[attr-defined]

# Due replies, claimed for one try each (their lease, their attempt counted), with their
# source's token as it is now: a token changed meanwhile sends, one cleared sends nothing.
_CLAIM = text("""
WITH claimed AS (
    UPDATE telegram_replies r SET attempts = r.attempts + 1, lease_until = :lease
    WHERE r.id IN (
        SELECT id FROM telegram_replies
        WHERE next_attempt_at <= :now AND (lease_until IS NULL OR lease_until < :now)
        ORDER BY next_attempt_at LIMIT :limit FOR UPDATE SKIP LOCKED
    ) RETURNING r.id, r.source_id, r.body, r.attempts, r.created_at
)
SELECT c.id, c.source_id, c.body, c.attempts, c.created_at, s.telegram_bot_token
FROM claimed c LEFT JOIN sources s ON s.id = c.source_id
""")
_SENT = text("DELETE FROM telegram_replies WHERE id = :id")
# What a failed try decides holds only while the reply is still that try's (not claimed again).
_GIVE_UP = text("DELETE FROM telegram_replies WHERE id = :id AND attempts = :attempts")
_AGAIN = text(
    "UPDATE telegram_replies SET next_attempt_at = :at, lease_until = NULL"
    " WHERE id = :id AND attempts = :attempts"
)
_DROP_ASKS = text(
    "DELETE FROM telegram_replies WHERE source_id = :source_id AND conversation_id = :conversation_id"
)
_FORGET = text("""
DELETE FROM telegram_replies r
USING unnest(CAST(:sources AS uuid[]), CAST(:conversations AS text[])) AS c(source_id, conversation_id)
WHERE r.source_id = c.source_id AND r.conversation_id = c.conversation_id
""")


@dataclass(frozen=True)
class Pending:
    """A kept reply, claimed for one try (its `attempts`-th)."""

    id: UUID
    source_id: UUID
    sealed_token: str | None
    body: dict[str, Any]
    attempts: int
    created_at: datetime


@dataclass(frozen=True)
class Answered:
    """What came of one try: the Bot API's status (None: no answer), the `retry_after` of a 429,
    and for a failure, what failed (never the token)."""

    status: int | None
    retry_after: float | None = None
    failure: str | None = None

    @property
    def sent(self) -> bool:
        return self.failure is None


async def keep(
    session: AsyncSession, source: Source, conversation_id: str, reply: Reply, now: datetime, lease: timedelta
) -> Pending:
    """Keep `reply` in the caller's transaction, claimed for its first try (`TelegramBot.send`
    once the transaction committed; by the retry loop after `lease`, should this process end
    first). A thanks drops the chat's asks still waiting to be sent again."""
    if reply.thanks:
        params = {"source_id": source.id, "conversation_id": conversation_id}
        await session.execute(_DROP_ASKS, params)
    reply_id = uuid4()
    row = {
        "id": reply_id,
        "source_id": source.id,
        "conversation_id": conversation_id,
        "chat_id": reply.chat_id,
        "body": reply.body,
        "created_at": now,
        "attempts": 1,
        "next_attempt_at": now,
        "lease_until": now + lease,
    }
    defer_insert(session, _TABLE, row)
    return Pending(reply_id, source.id, source.telegram_bot_token, reply.body, 1, now)


async def forget_replies(session: AsyncSession, chats: list[tuple[UUID, str]]) -> None:
    """Drop the replies still waiting for these chats (source, conversation) of a lead being
    erased, once their conversations are deleted (so a reply its update was keeping as they
    were is committed, and seen): nothing is sent to a person erased."""
    if chats:
        sources, conversations = (list(column) for column in zip(*chats, strict=True))
        await session.execute(_FORGET, {"sources": sources, "conversations": conversations})


class TelegramBot:
    def __init__(
        self,
        api_url: str,
        timeout_seconds: float,
        box: SecretBox,
        registry: CollectorRegistry,
        db: Database,
        clock: Callable[[], datetime],
        poll_seconds: float,
    ) -> None:
        self.api_url, self.timeout_seconds, self.box = api_url, timeout_seconds, box
        self.db, self.clock, self.poll_seconds = db, clock, poll_seconds
        self.lease = timedelta(seconds=timeout_seconds) + LEASE_MARGIN
        self.rng = random.Random()  # noqa: S311 - jitter, not security
        self._http: aiohttp.ClientSession | None = None
        self.replies = Counter(
            "leadflow_ingest_telegram_replies_total",
            "Messages the sources' Telegram bots sent people (sent), tries that failed (failed),"
            " and replies not sent after all (given_up).",
            ["outcome"],
            registry=registry,
        )

    async def run(self) -> None:
        """Sends again, every `poll_seconds`, the replies whose time came; holds the kept-alive
        connections to the Bot API for the life of the process."""
        try:
            while True:
                try:
                    while await self.retry_once():
                        pass
                except Exception as error:
                    raise_hidden_stop(error)
                    log.warning("telegram replies not tried again this turn: %s", describe(error))
                await asyncio.sleep(self.poll_seconds)  # a poll, not synchronisation
        finally:
            if self._http is not None:
                await self._http.close()
                self._http = None

    async def retry_once(self) -> bool:
        """Claim the replies due and send them; whether there may be more due now."""
        now = self.clock()
        async with self.db.transaction() as session:
            params = {"now": now, "lease": now + self.lease, "limit": CLAIM}
            rows = (await session.execute(_CLAIM, params)).all()
        claimed = [
            Pending(r.id, r.source_id, r.telegram_bot_token, _json(r.body), r.attempts, r.created_at)
            for r in rows
        ]
        await asyncio.gather(*(self.send(pending) for pending in claimed))
        return len(claimed) == CLAIM

    async def send(self, pending: Pending) -> bool:
        """Try `pending` once and record what came of it; whether the Bot API took it."""
        answered = await self._try(pending)
        try:
            await self._record(pending, answered)
        except Exception as error:  # its lease runs out: the retry loop decides again
            raise_hidden_stop(error)
            log.warning("a Telegram reply of source %s not recorded: %s", pending.source_id, describe(error))
        return answered.sent

    async def _try(self, pending: Pending) -> Answered:
        if pending.sealed_token is None:
            return Answered(None, failure="the source has no bot token any more")
        try:
            token = self.box.open(pending.sealed_token)
        except Exception as error:
            raise_hidden_stop(error)
            return Answered(None, failure=f"its token does not open ({type(error).__name__})")
        try:
            url = f"{self.api_url}/bot{token}/sendMessage"
            async with outgoing.post(self._client(), url, json=pending.body) as answer:
                if answer.status < 300:
                    return Answered(answer.status)
                retry_after = await _retry_after(answer) if answer.status == 429 else None
                return Answered(answer.status, retry_after, f"the Bot API answered {answer.status}")
        except Exception as error:  # its text may quote the URL, the token in it: only its type
            raise_hidden_stop(error)
            return Answered(None, None, type(error).__name__)

    async def _record(self, pending: Pending, answered: Answered) -> None:
        if answered.sent:
            async with self.db.transaction() as session:
                await session.execute(_SENT, {"id": pending.id})
            self.replies.labels("sent").inc()
            return
        self.replies.labels("failed").inc()
        now = self.clock()
        retryable = pending.sealed_token is not None and worth_retrying(answered.status)
        at = next_try(pending.attempts, pending.created_at, now, answered.retry_after, self.rng)
        at = at if retryable else None
        key = {"id": pending.id, "attempts": pending.attempts}
        async with self.db.transaction() as session:
            await session.execute(_GIVE_UP if at is None else _AGAIN, {**key, "at": at} if at else key)
        source, failure = pending.source_id, answered.failure
        if at is None:
            self.replies.labels("given_up").inc()
            log.warning(
                "the Telegram bot of source %s could not answer a chat: %s; given up after %d tries",
                source,
                failure,
                pending.attempts,
            )
        else:
            seconds = (at - now).total_seconds()
            log.warning(
                "the Telegram bot of source %s could not answer a chat: %s; trying again in %.0fs",
                source,
                failure,
                seconds,
            )

    def _client(self) -> aiohttp.ClientSession:
        if self._http is None:
            timeout = aiohttp.ClientTimeout(total=self.timeout_seconds)
            self._http = aiohttp.ClientSession(connector=outgoing.connector(), timeout=timeout)
        return self._http


async def _retry_after(answer: aiohttp.ClientResponse) -> float | None:
    """The seconds a 429 asks to wait: Telegram's `parameters.retry_after` in its JSON body, else
    a `Retry-After` header's seconds; None when it says neither."""
    try:
        body = json.loads(await answer.content.read(65536))
        seconds = body["parameters"]["retry_after"]
    except Exception:  # no body, no JSON, not Telegram's shape
        seconds = answer.headers.get("retry-after", "").strip()
    try:
        value = float(seconds)
    except (TypeError, ValueError):
        return None
    return min(value, MAX_RETRY_AFTER) if value >= 0 else None  # NaN is not >= 0


def _json(value: Any) -> dict[str, Any]:
    return json.loads(value) if isinstance(value, str | bytes) else dict(value)
