"""Events rung with their commit (the doorbell): applied at once, ahead of the relay and the broker."""

import asyncio
import contextlib
import logging
import time
from collections.abc import Sequence
from uuid import UUID

from shared.consumer.applying import Applying
from shared.consumer.deliveries import Delivery
from shared.events import Envelope
from shared.faults import cancelled_from_outside, raise_hidden_stop

log = logging.getLogger(__package__)

RUNG_IDS_KEPT = 10_000
RUNG_KEPT = 2_000  # events rung and not yet applied
RUNG_AWAITED_SECONDS = 5.0  # at most, a broker's copy waits for its ring (then: the inbox)


def rung(said: str) -> tuple[str, str]:
    """(the line said before the event, or "", the event) from what a ring said
    (`shared.outbox.stage`): an event is a JSON object, so a ring that starts with one is all event."""
    if said.startswith("{"):
        return "", said
    note, _, text = said.partition("\n")
    return note, text


class Rings(Applying):
    """The consumer runner's events heard as they rang, queued for one task to apply."""

    _rung: asyncio.Queue[Envelope]
    _ringing: set[UUID]  # heard, being applied as they rang: their broker's copies wait
    _rung_round: asyncio.Event  # set (and replaced) as each round of rung events ends

    def heard(self, said: str) -> None:
        """An event its producer rang with as it committed it (`shared.outbox.ring_with_message`),
        after the lead's key sealed (`shared.lead_keys.sealed_for_ring`): applied at once, ahead
        of the relay and the broker. The broker brings it too; a lost ring, or one that fails,
        costs only that wait."""
        note, text = rung(said)
        try:
            event = Envelope.from_bytes(text.encode())
        except ValueError as error:
            log.warning("consumer %s: a ring that is no event: %r", self.group, error)
            return
        if note and self.keys is not None:
            self.keys.learn_from_ring(event.lead_id, note)
        try:
            self._rung.put_nowait(event)
        except asyncio.QueueFull:
            return  # a flood: those come from the broker
        self._taking(event)
        self._ask_keys_early([event])  # if not: while it waits its turn

    def _taking(self, event: Envelope) -> None:
        """A rung event is on its way to be applied: its broker's copy, fetched meanwhile, waits
        for it (`_after_their_rings`) rather than opening a transaction of its own that would
        wait for the ring's inbox row and find it a duplicate (at a steady trickle, nearly every
        new lead's: a transaction, an inbox claim and a commit per lead for nothing)."""
        self._ringing.add(event.id)

    async def _after_their_rings(self, events: Sequence[Envelope]) -> None:
        """Wait until none of `events` is being applied as it rang (at most
        `RUNG_AWAITED_SECONDS`: then the inbox sorts them out, as it always can)."""
        if not self._ringing:
            return
        deadline = time.monotonic() + RUNG_AWAITED_SECONDS
        while any(event.id in self._ringing for event in events):
            left = deadline - time.monotonic()
            if left <= 0:
                return
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._rung_round.wait(), left)

    def _round_ended(self, events: list[Envelope]) -> None:
        self._ringing.difference_update(event.id for event in events)
        ended, self._rung_round = self._rung_round, asyncio.Event()
        ended.set()

    async def _apply_rung(self) -> None:
        while True:
            events = [await self._rung.get()]
            while not self._rung.empty():
                events.append(self._rung.get_nowait())
            try:
                await self._apply_rung_events(events)
                self._round_ended(events)
            except asyncio.CancelledError:
                self._given_back(events)
                if cancelled_from_outside():
                    raise
                log.warning("consumer %s: what rang was cancelled, it is applied as it comes", self.group)
            except Exception as error:
                self._given_back(events)
                raise_hidden_stop(error)
                log.warning("consumer %s: what rang failed, it is applied as it comes: %r", self.group, error)

    async def _apply_rung_events(self, events: list[Envelope]) -> None:
        """Through the inbox, as if the broker had brought them: its copy is then a duplicate
        (one applying meanwhile waits for this transaction's inbox rows, then finds them)."""
        started = time.perf_counter()
        await self._apply_in_one_transaction([Delivery(None, event) for event in events])
        self.telemetry.handler_latency.labels(self.group).observe(time.perf_counter() - started)
        for event in events:
            self._applied_as_rung[event.id] = None
        while len(self._applied_as_rung) > RUNG_IDS_KEPT:
            self._applied_as_rung.popitem(last=False)

    def _given_back(self, events: list[Envelope]) -> None:
        """Rung events that failed: the broker's copies are applied as they come."""
        self._round_ended(events)
