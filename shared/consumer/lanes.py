"""Lanes: work that must not wait behind the rest, in a consumer group of its own."""

import logging
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from uuid import UUID

from aiokafka import ConsumerRecord

from shared.consumer.deliveries import Handler, decode
from shared.consumer.rings import RUNG_IDS_KEPT
from shared.consumer.runner import ConsumerRunner
from shared.events import LEAD_ERASED, Envelope
from shared.faults import is_transient, raise_hidden_stop

log = logging.getLogger(__package__)


@dataclass(frozen=True)
class Lane:
    """Work that must not wait behind the rest (a hot lead's hand-off behind the follow-up of
    a hundred cold ones): a consumer group of its own (`LaneRunner`) applies the events
    `wants` picks with `handlers`, each batch in a short transaction. The handlers must be
    idempotent, and the service's main consumer applies them too: a no-op once the lane did
    the work, the work itself if the lane failed or was not running."""

    topics: Sequence[str]
    handlers: Mapping[str, Handler]
    wants: Callable[[Envelope], bool]
    # The doorbell the lane waits for, when its producer rings one for what it `wants` (not every
    # publish to its topics): what it does not want is then fetched with the next it does.
    bell: str | None = None


class LaneRunner(ConsumerRunner):
    """Applies a `Lane`: no inbox (its handlers are idempotent), no dead letters (the main
    consumer sees the same messages and deals with what is broken), and, for a new group, only
    what arrives from then on (the main consumer has the past)."""

    def __init__(self, *, lane: Lane, **settings: Any) -> None:
        super().__init__(handlers=lane.handlers, start_at="latest", **settings)
        self.lane = lane
        self._rung_ids: OrderedDict[UUID, None] = OrderedDict()  # applied, or being applied, as they rang

    def _taking(self, event: Envelope) -> None:
        # Taken from now on: the broker's copy, fetched while this one waits or is being
        # applied, is skipped, not applied alongside it (both would lock the reps).
        self._rung_ids[event.id] = None
        while len(self._rung_ids) > RUNG_IDS_KEPT:
            self._rung_ids.popitem(last=False)

    async def _apply_rung_events(self, events: list[Envelope]) -> None:
        await self._apply_wanted(events)

    def _given_back(self, events: list[Envelope]) -> None:
        # the broker's copy is applied as it comes (or, if it came already, the main consumer
        # gives the lead to a rep)
        for event in events:
            self._rung_ids.pop(event.id, None)

    async def apply(self, records: Sequence[ConsumerRecord]) -> None:
        events = [d.event for d in map(decode, records) if d.event is not None]
        try:
            await self._apply_wanted([e for e in events if not self._rang_before(e)])
        except Exception as error:
            raise_hidden_stop(error)
            if is_transient(error):
                raise
            log.warning("lane %s failed, the main consumer applies it: %r", self.group, error)

    def _rang_before(self, event: Envelope) -> bool:
        """Applied, or being applied, as it rang (then forgotten: it comes from the broker once)."""
        if event.id not in self._rung_ids:
            return False
        del self._rung_ids[event.id]
        return True

    async def _apply_wanted(self, events: list[Envelope]) -> None:
        erasing = {e.lead_id for e in events if e.type == LEAD_ERASED}
        wanted = [
            e for e in events if e.type in self.handlers and e.lead_id not in erasing and self.lane.wants(e)
        ]
        if not wanted:
            return
        self._ask_keys_early(wanted)
        started = time.perf_counter()
        # The main consumer applies the same events durably: a commit lost with the database
        # server is done again there, so this one does not wait for the disk.
        async with self.db.transaction(durable=False) as session:
            await self._apply_events(session, wanted)
        self.telemetry.handler_latency.labels(self.group).observe(time.perf_counter() - started)
