"""Which webhook receivers are paused (their circuit open: they kept failing, and nothing is sent
to them until the pause ends), kept by each process between transactions: a hot lead's hand-off
asks, to pass over a rep who cannot be reached, and it should not cost the lane a read. Every
change to a pause rings RECEIVERS_BELL as it commits (a trigger, migration 0022); the process
forgets them when it hears it, or when its doorbell connects again (a ring may have been
missed). A pause that ends by the clock needs no ring: each ask compares with its `now`."""

import asyncio
from collections.abc import Callable, Coroutine
from datetime import datetime
from typing import Any

from sqlmodel.ext.asyncio.session import AsyncSession

from shared.db import Database, driver_connection, kept
from shared.doorbell import answer

RECEIVERS_BELL = "receiver-circuits"  # the trigger's channel is `channel_of` it
_KEPT = "nurture.paused-receivers"
_READ = "SELECT origin, open_until FROM receiver_circuits WHERE open_until IS NOT NULL"

Pauses = dict[str, datetime]  # origin: paused until


class PausedReceivers:
    """The pauses, kept between transactions. A read that a change overtook is not kept."""

    def __init__(self) -> None:
        self._pauses: Pauses | None = None
        self._generation = 0

    def forget(self) -> None:
        self._pauses = None
        self._generation += 1

    async def of(self, session: AsyncSession) -> Pauses:
        if self._pauses is not None:
            return self._pauses
        generation = self._generation
        pauses = await _read(session)
        if generation == self._generation:
            self._pauses = pauses
        return pauses


async def paused_origins(session: AsyncSession, now: datetime) -> set[str]:
    """The origins (`subscriptions.origin_of`) of the receivers paused at `now`: those this process
    keeps (`keep_paused_receivers`), or else read in this transaction."""
    process: PausedReceivers | None = kept(session).get(_KEPT)
    pauses = await process.of(session) if process is not None else await _read(session)
    return {origin for origin, until in pauses.items() if until > now}


async def _read(session: AsyncSession) -> Pauses:
    rows = await (await driver_connection(session)).fetch(_READ)
    return {row["origin"]: row["open_until"] for row in rows}


def keep_paused_receivers(db: Database, changed: asyncio.Event) -> Callable[[], Coroutine[Any, Any, None]]:
    """Keep the pauses in this process, forgotten each time `changed` (RECEIVERS_BELL heard) is
    set; returns the loop that forgets them, for the runtime to run."""
    pauses = db.kept.setdefault(_KEPT, PausedReceivers())
    return lambda: answer(changed, pauses.forget)
