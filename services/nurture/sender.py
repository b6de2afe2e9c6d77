"""The touch scheduler: workers claim due touches with `FOR UPDATE SKIP LOCKED`, so several
replicas never take the same one; a claim is a lease, so a touch whose worker died is taken
again after it. The claimed touches are then sent inside one transaction that holds them and
their leads until what was sent is recorded: there the lead is looked at as it is now (erased,
unsubscribed, consent withdrawn: the touch is cancelled; an erasure or unsubscribe arriving
meanwhile waits for the record), and its quiet hours, call window and weekly cap are checked;
a touch that may not go yet is moved.

A touch taken again after its lease lapsed may have left already: its worker died between
the send and the record. An SMS or messenger text goes again with the same Idempotency-Key
(the provider drops the repeat), and a call task is queued in the record's own transaction,
so it never left. An email cannot be taken back or deduplicated by the receiver, so it is not
sent again: it fails as "in doubt" (at most once, never twice). A worker alive while the
database is away keeps its outcomes and records them when it is back, within the lease."""

import asyncio
import logging
from datetime import timedelta
from typing import Any

import aiohttp

from services.nurture.config import NurtureSettings
from services.nurture.followup import PlaybookBook
from services.nurture.playbooks import Playbooks
from services.nurture.safe_fields import for_the_person
from services.nurture.timing import CALL_TASK
from services.nurture.touch_channels import SendFailed, send_email, send_message
from services.nurture.touch_claims import BATCH, Claimed, Decided, Going, claim_due, gate
from services.nurture.touch_records import record
from shared import outgoing
from shared.db import Database
from shared.events import utcnow
from shared.faults import is_transient, raise_hidden_stop
from shared.languages import fill, language_of
from shared.wakeup import Wakeup

log = logging.getLogger(__name__)
RECORD_RETRY_SECONDS = (0.2, 5.0)  # from, doubling to


class TouchSender:
    def __init__(self, db: Database, book: PlaybookBook, settings: NurtureSettings) -> None:
        self.db, self.book, self.settings = db, book, settings
        self._wakeup = Wakeup()
        self.smtp_sessions = asyncio.Semaphore(settings.smtp_sessions)
        self.http: aiohttp.ClientSession | None = None

    def wake(self) -> None:
        self._wakeup.set()

    async def run(self) -> None:
        self.http = aiohttp.ClientSession(
            connector=outgoing.connector(),
            timeout=aiohttp.ClientTimeout(total=self.settings.webhook_timeout_seconds),
        )
        try:
            while True:
                try:
                    while await self.send_due() == BATCH:
                        pass
                except Exception as error:
                    raise_hidden_stop(error)
                    log.warning("touch sending failed: %r", error)
                await self._wakeup.wait(self.settings.touch_poll_seconds)
        finally:
            await self.http.close()

    async def send_due(self) -> int:
        """Claim due touches, then send the ones that may go now; returns the claim size."""
        async with self.db.transaction() as session:
            claimed = await claim_due(session, utcnow(), self.settings.touch_lease_seconds)
            # Read here, not in the gate's long transaction: the first read stores the initial
            # playbooks, and another sender's would wait for that row until the sends were done.
            playbooks = (await self.book.active(session)).value
        # Sends in flight are finished and recorded even when the service is stopping: cut
        # off between a send and its record, a touch would go again once its lease ran out.
        delivery = asyncio.ensure_future(self._deliver(claimed, playbooks))
        try:
            await asyncio.shield(delivery)
        except asyncio.CancelledError:
            await delivery
            raise
        return len(claimed)

    async def _deliver(self, claimed: list[Claimed], playbooks: Playbooks) -> None:
        """Send the claimed touches that may go, at once, inside one transaction that holds
        them and their leads (`gate`), and record what became of each in it; retried while
        the database is away and the claims hold: before the sends, the whole of it; after
        them, the record alone (from plain data: the first transaction's objects are gone)."""
        if not claimed:
            return
        lease_ends = min(item.touch.lease_until for item in claimed if item.touch.lease_until)
        delay, longest = RECORD_RETRY_SECONDS
        done: tuple[list[Decided], list[Going], list[Any]] | None = None
        while True:
            try:
                async with self.db.transaction() as session:
                    if done is None:
                        decided, going = await gate(session, claimed, playbooks, self.book)
                        done = decided, going, await self._send_all(going)
                    await record(session, self.settings, *done)
                return
            except Exception as error:
                raise_hidden_stop(error)
                if not is_transient(error) or utcnow() + timedelta(seconds=delay) >= lease_ends:
                    raise  # the touches are taken again, and an email among them fails as in doubt
                doing = "sending" if done is None else f"recording {len(done[1])} sends"
                log.warning("%s failed, trying again in %.1fs: %r", doing, delay, error)
                await asyncio.sleep(delay)
                delay = min(delay * 2, longest)

    async def _send_all(self, going: list[Going]) -> list[Any]:
        """Each touch's outcome: None (sent), what to tell the rep (a call task) or the error."""
        sends = (self._bounded(item) for item in going)
        return await asyncio.gather(*sends, return_exceptions=True)

    async def _bounded(self, item: Going) -> dict[str, Any] | None:
        """A send never outlives its claim: still going as the claim's lease nears its end, it
        fails and is retried, rather than another worker sending it meanwhile. A text has the
        webhook timeout (the HTTP session's); an email ends sooner on its own, knowing whether
        its data went (touch_channels)."""
        lease_until = item.claim.touch.lease_until or utcnow()
        margin = self.settings.webhook_timeout_seconds / 2  # after the email's own end
        try:
            async with asyncio.timeout((lease_until - utcnow()).total_seconds() - margin):
                return await self._send(item)
        except TimeoutError as error:
            raise SendFailed("no answer before the touch's claim ran out") from error

    async def _send(self, item: Going) -> dict[str, Any] | None:
        """Send one touch; a call task returns what to tell the rep (sent in the record step)."""
        touch, fields = item.claim.touch, item.fields
        language = language_of(fields)
        template = item.template  # of the version it was scheduled under (the gate's)
        channel = item.channel  # as the gate judged its consent and hours
        said = fields if channel == CALL_TASK else for_the_person(fields)  # a task is the rep's
        body, subject = fill(template.body, said, language), fill(template.subject, said, language)
        if channel == "email":
            await send_email(self.settings, touch, fields, subject, body, language, self.smtp_sessions)
        elif channel in ("sms", "messenger"):
            await send_message(self.settings, self.http, touch, channel, fields, body, language)
        else:
            return {"task": body, "lead": fields}
        return None
