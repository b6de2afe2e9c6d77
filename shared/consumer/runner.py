"""The consumer runner: batch in, one transaction per batch, inbox dedupe, offsets after commit, DLQ."""

import asyncio
import logging
import time
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from uuid import UUID

from aiokafka import AIOKafkaConsumer, TopicPartition

from shared.archive import ArchiveReplay, Reset
from shared.consumer.deliveries import Handler
from shared.consumer.polling import Polling
from shared.consumer.replaying import Replaying
from shared.consumer.rings import RUNG_KEPT
from shared.db import Database
from shared.events import Envelope
from shared.faults import cancelled_from_outside
from shared.http import NotReady
from shared.kafka_security import PLAINTEXT, KafkaSecurity
from shared.lead_keys import LeadKeys
from shared.observability import Telemetry

log = logging.getLogger(__package__)


# Built in layers, a module each, so that each can be read alone: screening, applying, rings;
# offsets, pausing; polling on both; replaying dead letters. The state is set here; each layer
# declares what it uses.
class ConsumerRunner(Polling, Replaying):
    """Applies events from `topics` with `handlers` (keyed by event type) for consumer `group`.

    A batch is applied in one transaction. If it fails, its messages are applied one by
    one, each retried `max_attempts` times; one that still fails goes to `<group>.dlq`, and
    is kept to be replayed once fixed (`replay`), so the partition moves on. Database or broker
    outages are retried without limit and never dead-letter anything. Unknown event types are
    recorded and skipped.
    """

    def __init__(
        self,
        *,
        group: str,
        topics: Sequence[str],
        handlers: Mapping[str, Handler],
        db: Database,
        telemetry: Telemetry,
        bootstrap: str,
        security: KafkaSecurity = PLAINTEXT,
        fetch_wait_ms: int = 10,
        session_timeout_ms: int = 6000,
        batch_size: int = 500,
        max_attempts: int = 3,
        archive: bool = False,
        keys: LeadKeys | None = None,
        idle_pause_seconds: float = 0.0,
        recheck_seconds: float = 5.0,
        news: asyncio.Event | None = None,
        pause_when_caught_up: bool = False,
        start_at: str = "earliest",
        warm_keys_on: frozenset[str] = frozenset(),
        gather_seconds: float = 0.0,
        parallel_partitions: int = 1,
    ) -> None:
        self.group, self.topics, self.handlers = group, list(topics), dict(handlers)
        self.db, self.telemetry = db, telemetry
        self.bootstrap, self.security, self.fetch_wait_ms = bootstrap, security, fetch_wait_ms
        self.session_timeout_ms = session_timeout_ms
        self.batch_size, self.max_attempts = batch_size, max_attempts
        self.consumer: AIOKafkaConsumer | None = None
        self.joined = False
        # Topics this consumer's group was assigned without (a broker that lost them): once
        # they are back, it leaves and joins again (see `JoinListener`).
        self.joined_without: list[str] = []
        self._applied: dict[TopicPartition, int] = {}  # next offset per partition, applied
        # Counts the group's rebalances: a batch fetched before one (from a broker that may be
        # gone, whose log the new one does not share) never gives its offsets to the group.
        self.assignments = 0
        self._committed_at = 0.0
        # An archiving runner keeps every message it claims (its inbox is its history) and
        # can rebuild its read model from that alone.
        self.archive = ArchiveReplay(db, self._apply_events, self._keep_unreplayed) if archive else None
        self._replay: tuple[Reset, asyncio.Future[int]] | None = None
        self.keys = keys  # given when the handlers need the person: sealed parts are opened
        # Idle for `idle_pause_seconds` (0: never), the consumer pauses its partitions, so it
        # sends the broker no fetch at all, until `news` (the doorbell: a relay published to
        # one of its topics) or `recheck_seconds` pass. Tansu answers a fetch only when its
        # wait expires, so an idle consumer fetching every few milliseconds costs it a core.
        self.idle_pause_seconds, self.recheck_seconds = idle_pause_seconds, recheck_seconds
        self.news = news or asyncio.Event()
        # And one that pauses as soon as it has caught up (a batch short of full), when it can be
        # woken (`idle_pause_seconds`): each fetch costs the broker and us about 2 ms of CPU,
        # so a consumer on a hot lead's way that kept fetching every few milliseconds between
        # leads cost more than the leads did; woken by the doorbell, it fetches when there is news.
        self.pause_when_caught_up = pause_when_caught_up and idle_pause_seconds > 0
        self.paused = False
        self._last_records_at = time.monotonic()
        self.start_at = start_at  # where a group with no committed offset starts reading
        # Event types whose leads' keys are asked for as they go by (in the background): a
        # lane that will soon open events about these leads finds their keys at hand.
        self.warm_keys_on = warm_keys_on
        # Off a hot lead's way, a consumer that took a batch short of full fetches again only
        # `gather_seconds` after it fetched that one: at a steady trickle it applies what came
        # meanwhile in one transaction, not each lead in its own (fetch, transaction, relay).
        self.gather_seconds = gather_seconds
        self._gathering_since: float | None = None
        # A batch's partitions split into this many transactions, applied at once: while one
        # waits for the database, the next is decided. Only for handlers that write nothing two
        # leads share (a lead's events all come on its partition, so each stays in order).
        self.parallel_partitions = parallel_partitions
        self._hurry = asyncio.Event()  # a rebuild was asked for: no gathering
        self._rung: asyncio.Queue[Envelope] = asyncio.Queue(RUNG_KEPT)  # heard, not yet applied
        self._ringing: set[UUID] = set()
        self._rung_round = asyncio.Event()
        self._applied_as_rung: OrderedDict[UUID, None] = OrderedDict()  # the broker's copies: skipped

    async def run(self) -> None:
        """Consume until cancelled, and apply what rings bring meanwhile (`heard`). Ends if the
        consumer does (not in a TaskGroup, where a child's end would leave the other running:
        `shared.loops.run_for_good` then logs it and starts both again)."""
        rung = asyncio.create_task(self._apply_rung(), name=f"{self.group}: rung")
        try:
            await self._consume()
        finally:
            rung.cancel()
            await asyncio.gather(rung, return_exceptions=True)

    async def _consume(self) -> None:
        backoff = 0.1
        while True:
            try:
                await self._start()
                await self.poll_once()
                backoff = 0.1
            except asyncio.CancelledError:
                await self.stop()
                raise
            except Exception as error:
                if cancelled_from_outside():  # a stop that failed as it unwound (faults.raise_hidden_stop)
                    await self.stop()
                    raise asyncio.CancelledError from error
                log.warning("consumer %s failed, retrying in %.1fs: %r", self.group, backoff, error)
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 5.0)

    async def ping(self) -> None:
        """Raise unless this consumer has joined its group (readiness)."""
        if not self.joined:
            raise NotReady("has not joined its group yet")
