"""What of a batch is applied: not the broker's copies of rung events, not unhandled types,
not events about erased leads, not duplicates (the inbox)."""

from collections import OrderedDict
from collections.abc import Sequence
from uuid import UUID

from sqlmodel.ext.asyncio.session import AsyncSession

from shared.archive import ArchiveReplay
from shared.consumer.deliveries import Delivery, Handler
from shared.events import LEAD_ERASED
from shared.inbox import archive_new_events, claim_new_events, screen_and_claim
from shared.observability import Telemetry
from shared.tombstones import bury, erased_among


class Screening:
    """The consumer runner's screening of a batch before its handlers see it."""

    handlers: dict[str, Handler]
    telemetry: Telemetry
    archive: ArchiveReplay | None
    _applied_as_rung: OrderedDict[UUID, None]

    def _not_applied_as_rung(self, deliveries: Sequence[Delivery]) -> list[Delivery]:
        """The broker's copies of events applied as they rang are duplicates: skipped with no
        transaction (the inbox would find them; one whose ring is still being applied goes
        there, and waits for that transaction's inbox row)."""
        kept = []
        for delivery in deliveries:
            event = delivery.event
            if event is not None and event.id in self._applied_as_rung:
                del self._applied_as_rung[event.id]  # it comes from the broker once
                self.telemetry.events_in.labels(delivery.topic, event.type, "duplicate").inc()
            else:
                kept.append(delivery)
        return kept

    def _taken(self, deliveries: Sequence[Delivery]) -> list[Delivery]:
        """What a handler takes, and erasures (their tombstones are kept whoever handles them);
        the rest is skipped, with no inbox row to write."""
        taken = []
        for delivery in deliveries:
            event = delivery.event
            assert event is not None
            if event.type in self.handlers or event.type == LEAD_ERASED:
                taken.append(delivery)
            else:
                self.telemetry.events_in.labels(delivery.topic, event.type, "skipped").inc()
        return taken

    async def _screened_and_claimed(
        self, session: AsyncSession, deliveries: Sequence[Delivery]
    ) -> tuple[list[Delivery], set[UUID]]:
        """The deliveries not about erased leads, and the ids among them not seen before (now
        claimed). With no erasure among them and no archive, in one statement: it runs for
        every batch of every consumer, a hot lead's included."""
        events = [d.event for d in deliveries if d.event is not None]
        if self.archive is not None or any(e.type == LEAD_ERASED for e in events):
            deliveries = await self._without_erased(session, deliveries)
            return deliveries, await self._claim(session, deliveries)
        gone, fresh = await screen_and_claim(session, [(e.id, e.lead_id) for e in events])
        return self._dropping(deliveries, gone), fresh

    async def _without_erased(self, session: AsyncSession, deliveries: Sequence[Delivery]) -> list[Delivery]:
        """Drop the events about erased leads (tombstoned before, or erased in this batch: what
        comes before the erasure goes too); keep the erasures, burying their leads."""
        events = [d.event for d in deliveries if d.event is not None]
        erasing = {e.lead_id for e in events if e.type == LEAD_ERASED}
        gone = await erased_among(session, (e.lead_id for e in events), erasing) | erasing
        await bury(session, erasing)
        return self._dropping(deliveries, gone)

    def _dropping(self, deliveries: Sequence[Delivery], gone: set[UUID]) -> list[Delivery]:
        """The deliveries but the events about `gone` leads (their erasures stay)."""
        kept = []
        for delivery in deliveries:
            event = delivery.event
            if event is not None and event.type != LEAD_ERASED and event.lead_id in gone:
                self.telemetry.events_in.labels(delivery.topic, event.type, "erased").inc()
            else:
                kept.append(delivery)
        return kept

    async def _claim(self, session: AsyncSession, deliveries: Sequence[Delivery]) -> set[UUID]:
        """Record the deliveries' events as handled (archived, for an archiving runner); returns
        the ids not seen before."""
        if self.archive is not None:
            messages = [
                (d.event.id, d.event.lead_id, d.record.topic, d.record.value)
                for d in deliveries
                if d.event and d.record  # (an archiving runner is rung nothing)
            ]
            return await archive_new_events(session, messages)
        return await claim_new_events(session, [d.event.id for d in deliveries if d.event])
