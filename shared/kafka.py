"""Kafka clients: a publisher that survives broker outages, and topic creation."""

import asyncio
import logging
import re
from collections.abc import Sequence
from contextvars import ContextVar
from functools import lru_cache
from typing import Any

import aiokafka.admin.client
import aiokafka.client
import aiokafka.consumer.consumer
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.consumer.group_coordinator import GroupCoordinator
from aiokafka.errors import KafkaError, TopicAlreadyExistsError, UnknownMemberIdError
from aiokafka.partitioner import DefaultPartitioner, murmur2
from aiokafka.protocol.commit import OffsetCommitRequest
from aiokafka.protocol.metadata import MetadataRequest

log = logging.getLogger(__name__)

Message = tuple[str, bytes | None, bytes]  # topic, key, value
Position = tuple[str, int, int]  # topic, partition, offset
TOPIC_NAME = re.compile(r"[a-zA-Z0-9._-]{1,249}")
# How often clients refresh what they know of topics (Kafka's default: 5 minutes). A client
# that looked while a lost cluster was being restored forgets the topic until then.
METADATA_MAX_AGE_MS = 10_000


class MetadataRequestNeverCreating(MetadataRequest):
    """A metadata request that never creates the topics it names.

    aiokafka asks with `allow_auto_topic_creation` true and has no setting for it. A broker
    that honours it (Tansu always creates, with 4 partitions) then creates a topic that any
    consumer or producer asks about just after the broker lost its topics, before
    `create_topics` or the relay's check could make it with its 8 partitions: half the keys
    would go to partitions that are never read again. Topics are made by `create_topics`
    only; a client that asks for a missing one is told so and asks again later.
    """

    def __init__(self, topics: list[str] | None = None, allow_auto_topic_creation: bool | None = None):
        super().__init__(topics, allow_auto_topic_creation=False)


# Who a commit began as (generation, member id): a retry sent as anyone else is refused.
_COMMITTING_AS: ContextVar[tuple[int, str] | None] = ContextVar("committing_as", default=None)


class GroupCoordinatorCommittingAsMember(GroupCoordinator):
    """A group's coordinator that commits offsets only as the member that applied them.

    aiokafka sends a commit even once it has been called out of its group (generation reset,
    as when the broker no longer knows the member) and before it joins again; the commit
    then goes with no generation, which a broker takes from anyone while the group has no
    members. And it retries a commit that met a retriable error as whatever member it is by
    then. After a broker lost everything, offsets in the lost log (the runner commits what it
    applied as it gives its partitions back) became the new group's: it resumed the
    republished log past what it held and skipped what came after. Such a commit now fails
    as the broker answers a stale member's (`CommitFailedError`), as the Java client does: out
    of the group, for an assignment that is no longer the consumer's, or as another member
    than it began as. The offsets are read again after the rejoin, and the inbox drops them.
    A consumer that assigns its partitions itself commits without a generation, as before.
    """

    async def commit_offsets(self, assignment: Any, offsets: Any) -> None:
        began_as = _COMMITTING_AS.set((self.generation, self.member_id))
        try:
            await super().commit_offsets(assignment, offsets)
        finally:
            _COMMITTING_AS.reset(began_as)

    async def _do_commit_offsets(self, assignment: Any, offsets: Any) -> None:
        if offsets and self._subscription.partitions_auto_assigned():
            member = (self.generation, self.member_id)
            if (
                self.generation == OffsetCommitRequest.DEFAULT_GENERATION_ID
                or not assignment.active
                or _COMMITTING_AS.get() not in (None, member)
            ):
                raise UnknownMemberIdError("no longer the member that applied them: offsets not committed")
        await super()._do_commit_offsets(assignment, offsets)


# Every aiokafka client of this process (consumers, producers, admin) asks this way, and its
# consumers commit this way.
aiokafka.client.MetadataRequest = MetadataRequestNeverCreating
aiokafka.admin.client.MetadataRequest = MetadataRequestNeverCreating
aiokafka.consumer.consumer.GroupCoordinator = GroupCoordinatorCommittingAsMember


def is_refusal(error: BaseException) -> bool:
    """The broker (or the client, before sending) refused this message for good: too large,
    an invalid topic, not authorised. Retrying the same message cannot help; an outage can."""
    return isinstance(error, KafkaError) and not error.retriable


class Publisher:
    """An acks=all producer started on first use and restarted after a failure.

    Idempotence stays off: the embedded broker refuses InitProducerId, and every
    consumer dedupes by event id anyway.
    """

    max_request_bytes = 1024 * 1024  # the producer's limit on one request (Kafka's default)

    def refuses(self, message: Message) -> str | None:
        """Why the message can never go (its size with room for a batch's framing, or its
        topic's name), before trying: a client waits for such a topic until it times out."""
        topic, key, value = message
        if not TOPIC_NAME.fullmatch(topic):
            return f"{topic!r} is not a valid topic name"
        if (size := len(key or b"") + len(value)) + 1024 > self.max_request_bytes:
            return f"{size:,} bytes: over the request limit"
        return None

    def __init__(self, bootstrap: str, client_id: str) -> None:
        self.bootstrap = bootstrap
        self.client_id = client_id
        self._producer: AIOKafkaProducer | None = None
        self._lock = asyncio.Lock()

    async def _started(self) -> AIOKafkaProducer:
        async with self._lock:
            if self._producer is None:
                producer = AIOKafkaProducer(
                    bootstrap_servers=self.bootstrap,
                    client_id=self.client_id,
                    acks="all",
                    linger_ms=0,
                    request_timeout_ms=10_000,
                    max_request_size=self.max_request_bytes,
                    metadata_max_age_ms=METADATA_MAX_AGE_MS,
                )
                try:
                    await producer.start()
                except BaseException:
                    await producer.stop()
                    raise
                self._producer = producer
            return self._producer

    async def publish(
        self, messages: Sequence[Message], headers: Sequence[tuple[str, bytes]] = ()
    ) -> list[Position]:
        """Send all messages and wait for every acknowledgement; returns where each landed.
        Raises if any failed (the producer is restarted, unless the message was refused)."""
        producer = await self._started()
        try:
            return await _send_in_batches(producer, messages, list(headers))
        except Exception as error:
            if not is_refusal(error):
                await self.reset()
            raise

    async def ping(self, timeout: float = 2.0) -> None:
        """Raise unless the broker answers a metadata request."""
        async with asyncio.timeout(timeout):
            producer = await self._started()
            await producer.client.fetch_all_metadata()

    async def reset(self) -> None:
        async with self._lock:
            producer, self._producer = self._producer, None
        if producer is not None:
            await producer.stop()

    async def stop(self) -> None:
        await self.reset()


def partition_of(key: bytes | None, partitions: list[int]) -> int:
    """The partition `send` would choose for the key (aiokafka's and Java's default partitioner:
    murmur2 of the key), with the hash remembered: a lead's key comes with each of its events."""
    if key is None:
        return int(DefaultPartitioner()(None, partitions, partitions))
    return partitions[_key_hash(key) % len(partitions)]


@lru_cache(maxsize=16_384)
def _key_hash(key: bytes) -> int:
    return int(murmur2(key)) & 0x7FFFFFFF  # pure Python in aiokafka: about 5 µs a key


async def _send_in_batches(
    producer: AIOKafkaProducer, messages: Sequence[Message], headers: list[tuple[str, bytes]]
) -> list[Position]:
    """Send the messages a batch per partition (more where one fills), partitioned by key as
    `send` would: a fraction of the work of a future per message. A partition's batches go in
    order, so its messages keep theirs; returns where each message landed."""
    partitions: dict[str, list[int]] = {}
    filling: dict[tuple[str, int], tuple[Any, list[int]]] = {}  # a batch builder, its messages
    sent: list[tuple[asyncio.Future[Any], list[int]]] = []
    for index, (topic, key, value) in enumerate(messages):
        if topic not in partitions:
            partitions[topic] = sorted(await producer.partitions_for(topic))
        partition = partition_of(key, partitions[topic])
        batch, members = filling.get((topic, partition), (None, []))
        if batch is None or batch.append(key=key, value=value, timestamp=None, headers=headers) is None:
            if batch is not None:
                sent.append((await producer.send_batch(batch, topic, partition=partition), members))
            batch, members = producer.create_batch(), []
            batch.append(key=key, value=value, timestamp=None, headers=headers)  # a first always fits
            filling[topic, partition] = (batch, members)
        members.append(index)
    for (topic, partition), (batch, members) in filling.items():
        sent.append((await producer.send_batch(batch, topic, partition=partition), members))
    # Every answer is awaited, so that a failure of one batch leaves no other's unretrieved.
    answers = await asyncio.gather(*(future for future, _ in sent), return_exceptions=True)
    for answer in answers:
        if isinstance(answer, BaseException):
            raise answer
    landed: list[Position] = [("", 0, 0)] * len(messages)
    for first, (_, members) in zip(answers, sent, strict=True):
        assert not isinstance(first, BaseException)
        for number, index in enumerate(members):
            landed[index] = (first.topic, first.partition, first.offset + number)
    return landed


async def create_topics(bootstrap: str, names: Sequence[str], partitions: int, replication: int = 1) -> None:
    """Create the topics that do not exist yet (idempotent), with `replication` copies and, when
    there are several, writes acknowledged by all but one (`min.insync.replicas`)."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, client_id="leadflow-admin")
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        configs = {"min.insync.replicas": str(replication - 1)} if replication > 1 else None
        missing = [
            NewTopic(n, partitions, replication, topic_configs=configs) for n in names if n not in existing
        ]
        if missing:
            try:
                await admin.create_topics(missing)
            except TopicAlreadyExistsError:
                log.info("topics created concurrently")
    finally:
        await admin.close()


async def log_ends(
    bootstrap: str, topics: Sequence[str], timeout: float = 10.0
) -> dict[tuple[str, int], int]:
    """The end offset of every partition of `topics` the broker has (a missing topic has none)."""
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, client_id="leadflow-relay-check")
    try:
        async with asyncio.timeout(timeout):
            await consumer.start()
            present = set(await consumer.topics())
            partitions = [
                TopicPartition(topic, partition)
                for topic in topics
                if topic in present
                for partition in consumer.partitions_for_topic(topic) or ()
            ]
            ends = await consumer.end_offsets(partitions) if partitions else {}
    finally:
        await consumer.stop()
    return {(tp.topic, tp.partition): offset for tp, offset in ends.items()}
