"""Offsets: committed after the database commit, at most every so often; the group's membership."""

import logging
import time

from aiokafka import AIOKafkaConsumer, ConsumerRebalanceListener, TopicPartition
from aiokafka.errors import CommitFailedError

from shared.observability import Telemetry

log = logging.getLogger(__package__)

# Offsets only say where to resume; the inbox makes redelivery harmless, so they are
# committed (always after the database commit) at most this often, not once per batch. Each
# commit is a broker request: four busy consumers committing four times a second cost the
# embedded broker more than a steady trickle of leads did.
OFFSET_COMMIT_SECONDS = 1.0


class Offsets:
    """The consumer runner's offsets applied, committed and lagging."""

    group: str
    topics: list[str]
    telemetry: Telemetry
    consumer: AIOKafkaConsumer | None
    joined: bool
    joined_without: list[str]
    _applied: dict[TopicPartition, int]
    assignments: int
    _committed_at: float
    start_at: str

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

    def _commit_due_in(self) -> float:
        """Seconds until the offsets applied are due to be committed (none or less: due)."""
        return self._committed_at + OFFSET_COMMIT_SECONDS - time.monotonic()

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


class JoinListener(ConsumerRebalanceListener):
    """Marks the runner joined; notes the topics its group was assigned without.

    A broker that lost its topics (Tansu in memory, restarted) lets a consumer join its group
    before they are made again; it is assigned none of their partitions. When they appear,
    aiokafka joins again, but Tansu keeps the group's generation and hands back the same
    empty assignment, so the consumer would read nothing for good. A new member (the runner
    starts a new consumer) is assigned them."""

    def __init__(self, runner: Offsets, consumer: AIOKafkaConsumer) -> None:
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
