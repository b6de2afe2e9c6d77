"""Replaying a dead letter once the bug that failed it is fixed: the message applied now, through
the consumer's own handlers, in one transaction that takes its claim again and deletes the row;
and an event a rebuild's replay of the archive failed, kept as a dead letter again."""

import logging

from sqlmodel.ext.asyncio.session import AsyncSession

from shared.archive import Archived
from shared.consumer import dead_letters
from shared.consumer.applying import Applying
from shared.consumer.dead_letters import DeadLetter, Replayed
from shared.consumer.deliveries import Delivery, decode
from shared.events import LEAD_ERASED
from shared.faults import is_transient, raise_hidden_stop
from shared.inbox import forget_claim, share_archive_turn
from shared.redact import describe
from shared.tombstones import bury, erased_among

log = logging.getLogger(__package__)


class NoSuchDeadLetter(LookupError):
    """No dead letter of this consumer has the id (replayed, discarded or erased already)."""


class NotReplayed(Exception):
    """The dead letter failed again (the row keeps the new error), or cannot be read at all."""


class Replaying(Applying):
    """The consumer runner's replay of its dead letters (`shared.consumer.dead_letters`)."""

    async def replay(self, letter_id: int) -> Replayed:
        """Apply dead letter `letter_id` now, as the consumer would have: its claim taken again,
        nothing applied about an erased lead, the row deleted on success. Raises NoSuchDeadLetter,
        or NotReplayed (an error saying why, redacted) keeping the row with that error."""
        try:
            async with self.db.transaction() as session:
                if self.archive is not None:
                    await share_archive_turn(session)  # before the row: a rebuild's reset deletes it
                letter = await dead_letters.find(session, self.group, letter_id)
                if letter is None:
                    raise NoSuchDeadLetter(letter_id)
                replayed = await self._replayed(session, letter)
        except (NoSuchDeadLetter, NotReplayed):
            raise
        except Exception as error:
            raise_hidden_stop(error)
            if is_transient(error):
                raise  # an outage: the row is as it was, and the replay may be asked again
            reason = describe(error, 1000)
            async with self.db.transaction() as session:
                await dead_letters.failed_again(session, letter_id, reason)
            log.warning("dead letter %d of %s failed again: %s", letter_id, self.group, reason)
            raise NotReplayed(reason) from None
        log.info("dead letter %d of %s replayed: %s", letter_id, self.group, replayed.outcome)
        return replayed

    async def _replayed(self, session: AsyncSession, letter: DeadLetter) -> Replayed:
        delivery = decode(letter.record)
        event = delivery.event
        if event is None:
            raise NotReplayed(delivery.error)
        # The lead's slot first (exclusive for an erasure), then the row: an erasure under way
        # (which holds the slot, then deletes the lead's rows) commits first, or waits for us.
        erasing = {event.lead_id} if event.type == LEAD_ERASED else set()
        gone = await erased_among(session, [event.lead_id], erasing)
        if not await dead_letters.take(session, letter.id):
            raise NoSuchDeadLetter(letter.id)
        await bury(session, erasing)
        if event.type != LEAD_ERASED and event.lead_id in gone:
            outcome = "erased"  # as the consumer drops it
        else:
            outcome = await self._apply_again(session, delivery)
        label = "replayed" if outcome == "applied" else outcome
        self.telemetry.events_in.labels(delivery.topic, event.type, label).inc()
        return Replayed(letter.id, event.id, event.type, event.lead_id, outcome)

    async def _apply_again(self, session: AsyncSession, delivery: Delivery) -> str:
        """Claim the event again (its dead letter's claim forgotten) and hand it to its handler,
        its sealed parts opened as the consumer opens them."""
        event = delivery.event
        assert event is not None
        await forget_claim(session, event.id, archived=self.archive is not None)
        if not await self._claim(session, [delivery]):
            return "duplicate"
        if event.type not in self.handlers:
            return "skipped"
        opened = await self._opened([event]) if self.keys is not None else [event]
        if not opened:
            return "erased"  # its lead's key is gone: the erasure is on its way
        await self._hand_to_handlers(session, opened)
        return "applied"

    async def _keep_unreplayed(self, session: AsyncSession, archived: Archived, error: str) -> None:
        """A rebuild's replay failed the event: kept to be replayed once fixed, as the consumer
        keeps one (its first dead letter, if it was one, went with the reset)."""
        event = archived.event
        await dead_letters.keep_archived(session, self.group, archived, error)
        self.telemetry.events_in.labels(archived.topic, event.type, "dead_lettered").inc()
        log.error("rebuild of %s dead-lettered event %s (%s): %s", self.group, event.id, event.type, error)
