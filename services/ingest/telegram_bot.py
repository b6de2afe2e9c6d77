"""The company's Telegram bot answering a person (`telegram_replies`): a sendMessage to the Bot
API (LEADFLOW_TELEGRAM_API_URL, an operator's setting, never an address from a request) with
the source's own bot token, sent after the update's transaction committed, in the background:
Telegram's webhook is answered at once whatever becomes of it, and sends it again after any
answer but a 2xx. A send that fails is logged (the source and what failed: no token, nothing
of the person's) and counted, `leadflow_ingest_telegram_replies_total{outcome}`."""

import asyncio
import logging
from uuid import UUID

import aiohttp
from prometheus_client import CollectorRegistry, Counter

from services.ingest.telegram_replies import Reply
from shared import outgoing
from shared.faults import raise_hidden_stop
from shared.sealing import SecretBox

log = logging.getLogger(__name__)


class TelegramBot:
    def __init__(
        self, api_url: str, timeout_seconds: float, box: SecretBox, registry: CollectorRegistry
    ) -> None:
        self.api_url, self.timeout_seconds, self.box = api_url, timeout_seconds, box
        self._http: aiohttp.ClientSession | None = None
        self.replies = Counter(
            "leadflow_ingest_telegram_replies_total",
            "Messages the sources' Telegram bots sent people (sent), or could not (failed).",
            ["outcome"],
            registry=registry,
        )

    async def run(self) -> None:
        """Holds the kept-alive connections to the Bot API for the life of the process."""
        try:
            await asyncio.Event().wait()
        finally:
            if self._http is not None:
                await self._http.close()

    async def send(self, source_id: UUID, sealed_token: str, reply: Reply) -> bool:
        """Send `reply` as the bot whose `sealed_token` it is; whether the Bot API took it."""
        try:
            token = self.box.open(sealed_token)
            async with outgoing.post(
                self._client(), f"{self.api_url}/bot{token}/sendMessage", json=reply.body
            ) as answer:
                failure = None if answer.status < 300 else f"the Bot API answered {answer.status}"
        except Exception as error:  # its text may quote the URL, the token in it: only its type
            raise_hidden_stop(error)
            failure = f"{type(error).__name__}"
        if failure is None:
            self.replies.labels("sent").inc()
            return True
        self.replies.labels("failed").inc()
        log.warning("the Telegram bot of source %s could not answer a chat: %s", source_id, failure)
        return False

    def _client(self) -> aiohttp.ClientSession:
        if self._http is None:
            timeout = aiohttp.ClientTimeout(total=self.timeout_seconds)
            self._http = aiohttp.ClientSession(connector=outgoing.connector(), timeout=timeout)
        return self._http
