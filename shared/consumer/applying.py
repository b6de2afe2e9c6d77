"""Applying a batch: one transaction, else message by message with retries, then the dead letters."""

import asyncio
import logging
import time
from collections import Counter
from collections.abc import Sequence
from itertools import groupby

from aiokafka import ConsumerRecord
from sqlmodel.ext.asyncio.session import AsyncSession

from shared.consumer import dead_letters
from shared.consumer.deliveries import Delivery, decode
from shared.consumer.screening import Screening
from shared.db import Database
from shared.events import LEAD_ERASED, Envelope
from shared.faults import is_transient, raise_hidden_stop
from shared.lead_keys import LeadKeys
from shared.outbox import stage
from shared.personal import is_sealed, opened
from shared.redact import describe
from shared.tombstones import erased_among
from shared.topics import dlq

log = logging.getLogger(__package__)


class Applying(Screening):
    """The consumer runner's work on the database: screened events to their handlers."""

    group: str
    db: Database
    keys: LeadKeys | None
    max_attempts: int
    warm_keys_on: frozenset[str]

    async def apply(self, records: Sequence[ConsumerRecord]) -> None:
        """Apply records to the database: the whole batch at once, else message by message."""
        deliveries = [decode(record) for record in records]
        good = [d for d in deliveries if d.event is not None]
        self._ask_keys_early([d.event for d in good if d.event is not None])
        await self._after_their_rings([d.event for d in good if d.event is not None])
        started = time.perf_counter()
        try:
            await self._apply_in_one_transaction(good)
        except Exception as error:
            raise_hidden_stop(error)  # not a bad message: nothing is isolated or dead-lettered
            if is_transient(error):
                raise
            log.warning("batch in %s failed, isolating the failing message: %r", self.group, error)
            for delivery in good:
                await self._apply_with_retries(delivery)
        self.telemetry.handler_latency.labels(self.group).observe(time.perf_counter() - started)
        for delivery in deliveries:
            if delivery.event is None:
                await self._dead_letter(delivery)

    async def _after_their_rings(self, events: Sequence[Envelope]) -> None:
        """Wait while any of `events` is being applied as it rang (`shared.consumer.rings`)."""

    def _ask_keys_early(self, events: Sequence[Envelope]) -> None:
        """Start asking for the keys the batch will need (while its transaction begins), and for
        those of the `warm_keys_on` events (for a lane)."""
        if self.keys is None:
            return
        wanted = self.handlers.keys() | self.warm_keys_on
        self.keys.warm(e.lead_id for e in events if e.type in wanted and is_sealed(e))

    async def _apply_in_one_transaction(self, deliveries: Sequence[Delivery]) -> None:
        if self._applied_as_rung:
            deliveries = self._not_applied_as_rung(deliveries)
        if not deliveries:
            return
        if self.archive is None:
            deliveries = self._taken(deliveries)
            if not deliveries:
                return
        async with self.db.transaction() as session:
            deliveries, fresh = await self._screened_and_claimed(session, deliveries)
            new: list[Envelope] = []
            counts: Counter[tuple[str, str, str]] = Counter()
            for delivery in deliveries:
                event = delivery.event
                assert event is not None
                outcome = "applied" if event.id in fresh else "duplicate"
                if event.id in fresh:
                    fresh.discard(event.id)  # the same id twice in one batch applies once
                    new.append(event)
                counts[delivery.topic, event.type, outcome] += 1
            for labels, count in counts.items():
                self.telemetry.events_in.labels(*labels).inc(count)
            await self._apply_events(session, new, screened=True)

    async def _apply_events(
        self, session: AsyncSession, events: list[Envelope], screened: bool = False
    ) -> None:
        """Hand the events to their handlers; a replay's or a lane's (not `screened` yet) lose
        those about erased leads first."""
        if not screened:
            gone = await erased_among(session, (e.lead_id for e in events))
            events = [e for e in events if e.type == LEAD_ERASED or e.lead_id not in gone]
        if self.keys is not None:
            events = await self._opened(events)
        await self._hand_to_handlers(session, events)

    async def _hand_to_handlers(self, session: AsyncSession, events: list[Envelope]) -> None:
        # Consecutive events with the same handler form one run (one call), in order.
        for handler, run in groupby(events, key=lambda e: self.handlers.get(e.type)):
            if handler is not None:
                await handler(session, list(run))

    async def _opened(self, events: list[Envelope]) -> list[Envelope]:
        """The events with their personal parts open; one whose lead has no key any more was
        about a person erased meanwhile (the erasure is on its way) and is dropped."""
        assert self.keys is not None
        self.keys.forget(e.lead_id for e in events if e.type == LEAD_ERASED)
        events = [e for e in events if e.type in self.handlers]  # the others are skipped anyway
        keys = await self.keys.of({e.lead_id for e in events if is_sealed(e)})
        kept = []
        for event in events:
            if not is_sealed(event):
                kept.append(event)
            elif (key := keys.get(event.lead_id)) is not None:
                kept.append(opened(event, key))
            else:
                self.telemetry.events_in.labels("-", event.type, "erased").inc()
        return kept

    async def _apply_with_retries(self, delivery: Delivery) -> None:
        for attempt in range(1, self.max_attempts + 1):
            try:
                await self._apply_in_one_transaction([delivery])
                return
            except Exception as error:
                raise_hidden_stop(error)
                if is_transient(error):
                    raise
                delivery.error = describe(error, 1000)
                log.warning("event failed in %s (attempt %d): %s", self.group, attempt, delivery.error)
                await asyncio.sleep(0.05 * 2**attempt)  # backoff between retries
        await self._dead_letter(delivery)

    async def _dead_letter(self, delivery: Delivery) -> None:
        """Stage the raw message for `<group>.dlq` in the outbox (journaled like any event), keep
        it in `inbox_dead_letters` (to be replayed once fixed: `shared.consumer.replaying`), and
        record it as handled, in one transaction, so a redelivery skips it."""
        record = delivery.record
        assert record is not None  # a ring that fails is applied as the broker brings it
        headers = [
            ("error", (delivery.error or "unknown").encode()[:1000]),
            ("source-topic", record.topic.encode()),
            ("source-partition", str(record.partition).encode()),
            ("source-offset", str(record.offset).encode()),
        ]
        async with self.db.transaction() as session:
            stage(
                session, dlq(self.group), record.key or b"", record.value or b"", headers
            )  # a tombstone: empty
            await dead_letters.keep(session, self.group, record, delivery.event, delivery.error or "unknown")
            await self._claim(session, [delivery])
        event_type = delivery.event.type if delivery.event else "undecodable"
        self.telemetry.events_in.labels(record.topic, event_type, "dead_lettered").inc()
        log.error(
            "dead-lettered %s[%d]@%d: %s",
            record.topic,
            record.partition,
            record.offset,
            delivery.error,
        )
