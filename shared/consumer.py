"""The consumer runner: batch in, one transaction per batch, inbox dedupe, offsets after commit, DLQ."""

import asyncio
import contextlib
import logging
import time
from collections import Counter, OrderedDict
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from itertools import groupby
from typing import Any
from uuid import UUID

from aiokafka import AIOKafkaConsumer, ConsumerRebalanceListener, ConsumerRecord, TopicPartition
from aiokafka.errors import CommitFailedError, IllegalStateError
from sqlmodel.ext.asyncio.session import AsyncSession

from shared.archive import ArchiveReplay, Reset
from shared.db import Database
from shared.events import LEAD_ERASED, Envelope
from shared.faults import cancelled_from_outside, is_transient
from shared.inbox import archive_new_events, claim_new_events, screen_and_claim
from shared.kafka import METADATA_MAX_AGE_MS, Publisher
from shared.observability import Telemetry
from shared.outbox import stage
from shared.personal import LeadKeys, is_sealed, opened
from shared.redact import describe
from shared.tombstones import bury, erased_among
from shared.topics import dlq

log = logging.getLogger(__name__)

Handler = Callable[[AsyncSession, list[Envelope]], Awaitable[None]]
"""Applies a run of consecutive events (of the types it is registered for), in order: one
statement can serve many."""
# Offsets only say where to resume; the inbox makes redelivery harmless, so they are
# committed (always after the database commit) at most this often, not once per batch. Each
# commit is a broker request: four busy consumers committing four times a second cost the
# embedded broker more than a steady trickle of leads did.
OFFSET_COMMIT_SECONDS = 1.0
RECHECK_LOOK_MS = 100


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


@dataclass
class Delivery:
    """One consumed message, decoded if it could be; or an event rung (no record)."""

    record: ConsumerRecord | None
    event: Envelope | None
    error: str | None = None

    @property
    def topic(self) -> str:
        return self.record.topic if self.record is not None else RUNG


class ConsumerRunner:
    """Applies events from `topics` with `handlers` (keyed by event type) for consumer `group`.

    A batch is applied in one transaction. If it fails, its messages are applied one by
    one, each retried `max_attempts` times; one that still fails goes to `<group>.dlq`
    so the partition moves on. Database or broker outages are retried without limit and
    never dead-letter anything. Unknown event types are recorded and skipped.
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
        self.bootstrap, self.fetch_wait_ms = bootstrap, fetch_wait_ms
        self.session_timeout_ms = session_timeout_ms
        self.batch_size, self.max_attempts = batch_size, max_attempts
        self.consumer: AIOKafkaConsumer | None = None
        self.joined = False
        # Topics this consumer's group was assigned without (a broker that lost them): once
        # they are back, it leaves and joins again (see `_JoinListener`).
        self.joined_without: list[str] = []
        self._applied: dict[TopicPartition, int] = {}  # next offset per partition, applied
        # Counts the group's rebalances: a batch fetched before one (from a broker that may be
        # gone, whose log the new one does not share) never gives its offsets to the group.
        self.assignments = 0
        self._committed_at = 0.0
        # An archiving runner keeps every message it claims (its inbox is its history) and
        # can rebuild its read model from that alone.
        self.archive = ArchiveReplay(db, self._apply_events) if archive else None
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
        self._applied_as_rung: OrderedDict[UUID, None] = OrderedDict()  # the broker's copies: skipped

    def request_replay(self, reset: "Reset") -> "asyncio.Future[int]":
        """Rebuild from the archive: between two batches, `reset(session)` clears the read
        model and the replay starts, in one transaction; it then runs a chunk between two
        fetches (progress: `archive.progress()`). Resolves, once reset, to the events to replay.
        Asked for again before it started: the same replay, and the same future."""
        if self.archive is None:
            raise RuntimeError(f"consumer {self.group} keeps no archive to replay")
        if self._replay is not None:  # replaced, the first asker's future would never resolve
            return self._replay[1]
        future: asyncio.Future[int] = asyncio.get_running_loop().create_future()
        self._replay = (reset, future)
        self.news.set()  # a paused consumer turns again at once
        self._hurry.set()
        return future

    async def _start_replay(self) -> None:
        assert self._replay is not None and self.archive is not None
        (reset, future), self._replay = self._replay, None
        self._hurry.clear()
        try:
            async with self.db.transaction() as session:
                total = await self.archive.start(session, reset)
        except BaseException as error:
            future.set_exception(error)
            raise
        future.set_result(total)
        log.warning("consumer %s: read model reset, replaying %d archived events", self.group, total)

    async def run(self) -> None:
        """Consume until cancelled, and apply what rings bring meanwhile (`heard`). Ends if the
        consumer does (not in a TaskGroup, where a child's end would leave the other running:
        `shared.service.run_for_good` then logs it and starts both again)."""
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
                log.warning("consumer %s failed, retrying in %.1fs: %r", self.group, backoff, error)
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 5.0)

    async def _start(self) -> AIOKafkaConsumer:
        if self.consumer is None:
            consumer = AIOKafkaConsumer(
                bootstrap_servers=self.bootstrap,
                group_id=self.group,
                client_id=f"leadflow-{self.group}",
                enable_auto_commit=False,
                auto_offset_reset=self.start_at,
                fetch_max_wait_ms=self.fetch_wait_ms,
                session_timeout_ms=self.session_timeout_ms,
                heartbeat_interval_ms=self.session_timeout_ms // 3,
                # Each partition's part of a fetch response: room for the largest record batch
                # a Leadflow producer writes (one request), no more. At 4 MiB a consumer a
                # backlog behind decoded responses of ~50 MB (metrics' peak RSS 169 MB, 154 now).
                max_partition_fetch_bytes=Publisher.max_request_bytes,
                metadata_max_age_ms=METADATA_MAX_AGE_MS,
            )
            consumer.subscribe(self.topics, listener=_JoinListener(self, consumer))
            try:
                await consumer.start()
            except BaseException:
                await consumer.stop()
                raise
            self.consumer = consumer
        return self.consumer

    async def ping(self) -> None:
        """Raise unless this consumer has joined its group (readiness)."""
        if not self.joined:
            raise RuntimeError(f"consumer {self.group} has not joined its group yet")

    async def lag(self) -> int:
        """Messages on the assigned partitions not yet committed by this group."""
        consumer = self.consumer
        if consumer is None or not self.joined:
            raise RuntimeError(f"consumer {self.group} is not running")
        partitions = list(consumer.assignment())
        ends = await consumer.end_offsets(partitions)
        committed = [await self._committed_or_start(consumer, tp) for tp in partitions]
        # Clamped per partition: Tansu can report an end offset one below a committed offset.
        return sum(max(ends[tp] - done, 0) for tp, done in zip(partitions, committed, strict=True))

    async def _committed_or_start(self, consumer: AIOKafkaConsumer, partition: TopicPartition) -> int:
        """The group's committed offset; never committed, where the group starts reading (a
        lane, at the end of the topic, owes nothing before it)."""
        committed = await consumer.committed(partition)
        if committed is not None:
            return committed
        return 0 if self.start_at == "earliest" else await consumer.position(partition)

    async def stop(self) -> None:
        self.joined = False
        try:
            await self.commit_applied()
        except Exception as error:
            log.info("final offset commit of %s skipped: %r", self.group, error)
        consumer, self.consumer = self.consumer, None
        if consumer is not None:
            await consumer.stop()

    async def poll_once(self, timeout_ms: int = 1000) -> int:
        """Fetch one batch and apply it; commit offsets when due. Returns the message count."""
        consumer = await self._start()
        if self.joined_without and all(consumer.partitions_for_topic(t) for t in self.joined_without):
            log.warning("consumer %s: %s exist again; joining again", self.group, self.joined_without)
            self.joined_without = []
            await self.stop()
            consumer = await self._start()
        await self._gather(consumer)
        looking_round = self.paused and not await self._wait_for_news(consumer)
        if looking_round or self.pause_when_caught_up:
            # A look round, then pause again; long enough for a fetch that must first find its
            # position again (a broker restarted empty, a rebalance), or it would never finish.
            timeout_ms = min(timeout_ms, max(3 * self.fetch_wait_ms, RECHECK_LOOK_MS))
        if self._replay is not None:
            await self._start_replay()
        if self.archive is not None and await self.archive.step():
            timeout_ms = 0  # replaying: take what has arrived meanwhile, then the next chunk
        fetched_at = time.monotonic()
        batch = await self._fetch(consumer, timeout_ms)
        assignment = self.assignments
        records = [record for partition in batch.values() for record in partition]
        short = 0 < len(records) < self.batch_size and not (self.archive is not None and self.archive.busy)
        self._gathering_since = fetched_at if short and self.gather_seconds else None
        if not records:
            if self.pause_when_caught_up:
                self._pause(consumer)
            else:
                await self._pause_when_idle(consumer)
        else:
            self._last_records_at = time.monotonic()
            if self.pause_when_caught_up:
                # No fetch ahead while the batch is applied: the client would send one at once,
                # which the broker holds for its whole wait and answers empty when the leads come
                # one by one (a broker request and a response to decode per batch, for nothing).
                # Afterwards the consumer fetches again at once or waits for the doorbell.
                consumer.pause(*consumer.assignment())
            try:
                await self._apply_partitions(batch)
            except BaseException:
                # Not applied (an outage, or shutdown): fetch the same messages again next
                # time, or a later batch's offsets would commit past them. After a rebalance
                # the group's committed offsets say where to read.
                if assignment == self.assignments:
                    for tp, partition_records in batch.items():
                        consumer.seek(tp, partition_records[0].offset)
                consumer.resume(*consumer.paused())
                raise
            if assignment == self.assignments:
                self._applied |= {tp: rs[-1].offset + 1 for tp, rs in batch.items()}
            else:
                # Assigned again while applying: these offsets may be positions in the log of
                # a broker that was lost, and committed in the new one they would skip what its
                # log holds below them. The messages come again (the inbox drops them).
                log.info("consumer %s: a batch's offsets dropped after a rebalance", self.group)
            if self.pause_when_caught_up:
                if await self._caught_up(consumer):
                    self._pause(consumer)
                if not self.paused:
                    consumer.resume(*consumer.paused())
        if time.monotonic() - self._committed_at >= OFFSET_COMMIT_SECONDS:
            await self.commit_applied()
        return len(records)

    async def _fetch(
        self, consumer: AIOKafkaConsumer, timeout_ms: int
    ) -> dict[TopicPartition, list[ConsumerRecord]]:
        """A batch. Behind (a full batch) with partitions applied in parallel: a batch more from
        other partitions for each further transaction, if the client holds some already (it
        hands out a partition's records before the next one's, so a backlog would come one
        partition at a time)."""
        batch = dict(await consumer.getmany(timeout_ms=timeout_ms, max_records=self.batch_size))
        ways = self.parallel_partitions if sum(map(len, batch.values())) >= self.batch_size else 1
        for _ in range(1, ways):
            others = [tp for tp in consumer.assignment() if tp not in batch]
            more = (
                await consumer.getmany(*others, timeout_ms=0, max_records=self.batch_size) if others else {}
            )
            if not more:
                break
            batch.update(more)
        return batch

    async def _apply_partitions(self, batch: Mapping[TopicPartition, Sequence[ConsumerRecord]]) -> None:
        """Apply a fetched batch; one of more than a full batch (see `_fetch`) in up to
        `parallel_partitions` transactions at once, each with whole partitions. Raises the first
        failure once all have ended (the caller fetches the batch again; what one of them
        committed is then a duplicate). A short batch (leads as they come) stays one
        transaction: two would cost more than they save."""
        ways = self.parallel_partitions if sum(map(len, batch.values())) > self.batch_size else 1
        shares = split_partitions(batch, ways)
        if len(shares) == 1:
            await self.apply(shares[0])
            return
        outcomes = await asyncio.gather(*(self.apply(share) for share in shares), return_exceptions=True)
        for outcome in outcomes:
            if isinstance(outcome, BaseException):
                raise outcome

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
                left = min(left, max(self._committed_at + OFFSET_COMMIT_SECONDS - time.monotonic(), 0.001))
            with contextlib.suppress(TimeoutError):
                rung = await asyncio.wait_for(self.news.wait(), timeout=left)
            if not rung and self._applied and time.monotonic() - self._committed_at >= OFFSET_COMMIT_SECONDS:
                await self.commit_applied()
        self.news.clear()  # before fetching: a ring from now on is news again
        consumer.resume(*consumer.paused())
        self.paused = False
        if rung:
            self._last_records_at = time.monotonic()  # stay awake a while: more is likely coming
        return rung

    async def commit_applied(self) -> None:
        """Commit the offsets of everything applied so far."""
        offsets, self._applied = self._applied, {}
        self._committed_at = time.monotonic()
        if offsets and self.consumer is not None:
            await self._commit(self.consumer, offsets)

    async def _commit(self, consumer: AIOKafkaConsumer, offsets: dict[TopicPartition, int]) -> None:
        try:
            await consumer.commit(offsets)
        except CommitFailedError:
            # Partitions moved to another member; it will see these events and skip them.
            log.info("offset commit lost to a rebalance in %s", self.group)
            return
        for tp, offset in offsets.items():
            highwater = consumer.highwater(tp)
            if highwater is not None:
                self.telemetry.consumer_lag.labels(self.group, tp.topic, tp.partition).set(
                    max(highwater - offset, 0)
                )

    async def apply(self, records: Sequence[ConsumerRecord]) -> None:
        """Apply records to the database: the whole batch at once, else message by message."""
        deliveries = [_decode(record) for record in records]
        good = [d for d in deliveries if d.event is not None]
        self._ask_keys_early([d.event for d in good if d.event is not None])
        started = time.perf_counter()
        try:
            await self._apply_in_one_transaction(good)
        except Exception as error:
            if is_transient(error):
                raise
            log.warning("batch in %s failed, isolating the failing message: %r", self.group, error)
            for delivery in good:
                await self._apply_with_retries(delivery)
        self.telemetry.handler_latency.labels(self.group).observe(time.perf_counter() - started)
        for delivery in deliveries:
            if delivery.event is None:
                await self._dead_letter(delivery)

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

    def heard(self, said: str) -> None:
        """An event its producer rang with as it committed it (`shared.outbox.ring_with_message`),
        after the lead's key sealed (`shared.personal.sealed_for_ring`): applied at once, ahead
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
        """A rung event is on its way to be applied."""

    async def _apply_rung(self) -> None:
        while True:
            events = [await self._rung.get()]
            while not self._rung.empty():
                events.append(self._rung.get_nowait())
            try:
                await self._apply_rung_events(events)
            except asyncio.CancelledError:
                self._given_back(events)
                if cancelled_from_outside():
                    raise
                log.warning("consumer %s: what rang was cancelled, it is applied as it comes", self.group)
            except Exception as error:
                self._given_back(events)
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

    async def _apply_with_retries(self, delivery: Delivery) -> None:
        for attempt in range(1, self.max_attempts + 1):
            try:
                await self._apply_in_one_transaction([delivery])
                return
            except Exception as error:
                if is_transient(error):
                    raise
                delivery.error = describe(error, 1000)
                log.warning("event failed in %s (attempt %d): %s", self.group, attempt, delivery.error)
                await asyncio.sleep(0.05 * 2**attempt)  # backoff between retries
        await self._dead_letter(delivery)

    async def _dead_letter(self, delivery: Delivery) -> None:
        """Stage the raw message for `<group>.dlq` in the outbox (journaled like any event) and
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
            stage(session, dlq(self.group), record.key or b"", record.value, headers)
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
        events = [d.event for d in map(_decode, records) if d.event is not None]
        try:
            await self._apply_wanted([e for e in events if not self._rang_before(e)])
        except Exception as error:
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


def rung(said: str) -> tuple[str, str]:
    """(the line said before the event, or "", the event) from what a ring said
    (`shared.outbox.stage`): an event is a JSON object, so a ring that starts with one is all event."""
    if said.startswith("{"):
        return "", said
    note, _, text = said.partition("\n")
    return note, text


RUNG_IDS_KEPT = 10_000
RUNG_KEPT = 2_000  # events rung and not yet applied
RUNG = "(rung)"  # the topic label of an event applied as it rang


class _JoinListener(ConsumerRebalanceListener):
    """Marks the runner joined; notes the topics its group was assigned without.

    A broker that lost its topics (Tansu in memory, restarted) lets a consumer join its group
    before they are made again; it is assigned none of their partitions. When they appear,
    aiokafka joins again, but Tansu keeps the group's generation and hands back the same
    empty assignment, so the consumer would read nothing for good. A new member (the runner
    starts a new consumer) is assigned them."""

    def __init__(self, runner: ConsumerRunner, consumer: AIOKafkaConsumer) -> None:
        self.runner, self.consumer = runner, consumer

    async def on_partitions_revoked(self, revoked: object) -> None:
        self.runner.assignments += 1  # a batch still being applied keeps its offsets to itself
        await self.runner.commit_applied()  # before another member takes them over

    async def on_partitions_assigned(self, assigned: object) -> None:
        self.runner.assignments += 1
        missing = [t for t in self.runner.topics if not self.consumer.partitions_for_topic(t)]
        if missing:
            log.warning("consumer %s joined while the broker has no %s", self.runner.group, missing)
        self.runner.joined_without = missing
        self.runner.joined = not missing


def split_partitions(
    batch: Mapping[TopicPartition, Sequence[ConsumerRecord]], ways: int
) -> list[list[ConsumerRecord]]:
    """A batch's records in at most `ways` shares of whole partitions (each in its order), the
    largest partitions first into the smallest share: about as many records in each."""
    if ways <= 1 or len(batch) <= 1:
        return [[record for records in batch.values() for record in records]]
    shares: list[list[ConsumerRecord]] = [[] for _ in range(min(ways, len(batch)))]
    for records in sorted(batch.values(), key=len, reverse=True):
        min(shares, key=len).extend(records)
    return [share for share in shares if share] or [[]]


def _decode(record: ConsumerRecord) -> Delivery:
    try:
        return Delivery(record, Envelope.from_bytes(record.value))
    except ValueError as error:
        return Delivery(record, None, f"undecodable envelope: {error}"[:1000])
