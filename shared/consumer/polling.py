"""One turn of the consumer: fetch a batch, apply it (its partitions in parallel), commit when due."""

import asyncio
import logging
import time
from collections.abc import Mapping, Sequence

from aiokafka import AIOKafkaConsumer, ConsumerRecord, TopicPartition

from shared.archive import Reset
from shared.consumer import dead_letters
from shared.consumer.offsets import JoinListener
from shared.consumer.pausing import Pausing
from shared.consumer.rings import Rings
from shared.kafka import METADATA_MAX_AGE_MS, Publisher
from shared.kafka_security import KafkaSecurity

log = logging.getLogger(__package__)

RECHECK_LOOK_MS = 100


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


class Polling(Pausing, Rings):
    """The consumer runner's Kafka client and its fetch-apply-commit turn."""

    bootstrap: str
    security: KafkaSecurity
    fetch_wait_ms: int
    session_timeout_ms: int
    batch_size: int
    parallel_partitions: int
    pause_when_caught_up: bool

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
                **self.security.client_options(),
            )
            consumer.subscribe(self.topics, listener=JoinListener(self, consumer))
            try:
                await consumer.start()
            except BaseException:
                await consumer.stop()
                raise
            self.consumer = consumer
        return self.consumer

    async def stop(self) -> None:
        self.joined = False
        try:
            await self.commit_applied()
        except Exception as error:
            log.info("final offset commit of %s skipped: %r", self.group, error)
        consumer, self.consumer = self.consumer, None
        if consumer is not None:
            await consumer.stop()

    def request_replay(self, reset: "Reset") -> "asyncio.Future[int]":
        """Rebuild from the archive: between two batches, `reset(session)` clears the read
        model, the dead letters the replay will apply go, and the replay starts, in one
        transaction; it then runs a chunk between two
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
                # Under the archive's turn still: what is archived now is what the replay applies.
                taken = await dead_letters.forget_archived(session, self.group)
        except BaseException as error:
            future.set_exception(error)
            raise
        future.set_result(total)
        log.warning(
            "consumer %s: read model reset, replaying %d archived events (%d of them dead letters)",
            self.group,
            total,
            taken,
        )

    async def poll_once(self, timeout_ms: int = 1000) -> int:
        """Fetch one batch and apply it; commit offsets when due. Returns the message count."""
        consumer = await self._joined_consumer()
        timeout_ms = await self._before_fetching(consumer, timeout_ms)
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
            await self._apply_fetched(consumer, batch, assignment)
        if self._commit_due_in() <= 0:
            await self.commit_applied()
        return len(records)

    async def _joined_consumer(self) -> AIOKafkaConsumer:
        """The Kafka client; a new one once the topics its group was assigned without exist again."""
        consumer = await self._start()
        if self.joined_without and all(consumer.partitions_for_topic(t) for t in self.joined_without):
            log.warning("consumer %s: %s exist again; joining again", self.group, self.joined_without)
            self.joined_without = []
            await self.stop()
            consumer = await self._start()
        return consumer

    async def _before_fetching(self, consumer: AIOKafkaConsumer, timeout_ms: int) -> int:
        """Gather, or wait for news while paused; start a replay asked for. Returns how long the
        fetch may wait."""
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
        return timeout_ms

    async def _apply_fetched(
        self,
        consumer: AIOKafkaConsumer,
        batch: Mapping[TopicPartition, Sequence[ConsumerRecord]],
        assignment: int,
    ) -> None:
        """Apply a batch fetched during `assignment` (the count of the group's rebalances)."""
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
            self._fetch_again(consumer, batch, assignment)
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

    def _fetch_again(
        self,
        consumer: AIOKafkaConsumer,
        batch: Mapping[TopicPartition, Sequence[ConsumerRecord]],
        assignment: int,
    ) -> None:
        """Not applied (an outage, or shutdown): fetch the same messages again next time, or a
        later batch's offsets would commit past them. After a rebalance the group's committed
        offsets say where to read."""
        if assignment == self.assignments:
            for tp, partition_records in batch.items():
                consumer.seek(tp, partition_records[0].offset)
        consumer.resume(*consumer.paused())

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
