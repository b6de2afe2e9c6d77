"""Pausing a consumer: gathering a trickle into one batch, idling until the doorbell rings."""

import asyncio
import contextlib
import time

from aiokafka import AIOKafkaConsumer
from aiokafka.errors import IllegalStateError

from shared.archive import ArchiveReplay, Reset
from shared.consumer.offsets import Offsets


class Pausing(Offsets):
    """The consumer runner's pauses between fetches."""

    idle_pause_seconds: float
    recheck_seconds: float
    news: asyncio.Event
    paused: bool
    _last_records_at: float
    gather_seconds: float
    _gathering_since: float | None
    _hurry: asyncio.Event
    _replay: tuple[Reset, asyncio.Future[int]] | None
    archive: ArchiveReplay | None

    async def _gather(self, consumer: AIOKafkaConsumer) -> None:
        """After a short batch, let the next gather (cut short by a rebuild asked for). The
        partitions are paused meanwhile: the client would fetch and hold one early piece of
        each, not fetching that partition again until it was taken."""
        since, self._gathering_since = self._gathering_since, None
        if since is None or self._replay is not None or self.paused:
            return
        left = since + self.gather_seconds - time.monotonic()
        if left <= 0:
            return
        partitions = consumer.assignment()
        consumer.pause(*partitions)
        try:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._hurry.wait(), timeout=left)
            # A fetch in flight at the pause still brings its piece, held until taken: dropped
            # (the position stays), so that the next fetch takes all that came.
            for partition in partitions:
                with contextlib.suppress(IllegalStateError):
                    consumer.seek(partition, await consumer.position(partition))
        finally:
            consumer.resume(*consumer.paused())

    async def _pause_when_idle(self, consumer: AIOKafkaConsumer) -> None:
        idle = time.monotonic() - self._last_records_at
        if self.idle_pause_seconds and idle >= self.idle_pause_seconds:
            await self.commit_applied()
            self._pause(consumer)

    async def _caught_up(self, consumer: AIOKafkaConsumer) -> bool:
        """Whether this consumer has read each partition to the end the broker last told of.
        A fetch can bring less than the broker holds when it answers (one in flight while a
        ring was heard and spent): no ring would come again for the rest. Seen in the
        oversized-merge fault scenario; Tansu itself answers with every record batch."""
        for partition in consumer.assignment():
            end = consumer.highwater(partition)
            if end is None or await consumer.position(partition) < end:
                return False
        return True

    def _pause(self, consumer: AIOKafkaConsumer) -> None:
        if self.joined and self._replay is None and not (self.archive is not None and self.archive.busy):
            consumer.pause(*consumer.assignment())
            self.paused = True

    async def _wait_for_news(self, consumer: AIOKafkaConsumer) -> bool:
        """Paused: until the doorbell rings for our topics (True), or `recheck_seconds` pass
        (False: the consumer looks once and pauses again unless it finds something). Offsets
        applied before the pause are committed meanwhile, when due."""
        rung = False
        deadline = time.monotonic() + self.recheck_seconds
        while not rung and (left := deadline - time.monotonic()) > 0:
            if self._applied:
                left = min(left, max(self._commit_due_in(), 0.001))
            with contextlib.suppress(TimeoutError):
                rung = await asyncio.wait_for(self.news.wait(), timeout=left)
            if not rung and self._applied and self._commit_due_in() <= 0:
                await self.commit_applied()
        self.news.clear()  # before fetching: a ring from now on is news again
        consumer.resume(*consumer.paused())
        self.paused = False
        if rung:
            self._last_records_at = time.monotonic()  # stay awake a while: more is likely coming
        return rung
