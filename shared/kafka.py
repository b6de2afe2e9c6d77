"""Kafka clients: a publisher that survives broker outages, topic creation, and the log ends of
topics. aiokafka is corrected on import (`shared.kafka_patches`)."""

import asyncio
import logging
import re
from collections.abc import Sequence

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import KafkaError, KafkaTimeoutError, TopicAlreadyExistsError

from shared.kafka_batches import Message, Position, send_in_batches
from shared.kafka_patches import patch_aiokafka
from shared.kafka_security import PLAINTEXT, KafkaSecurity

patch_aiokafka()  # before any client of this process is made

log = logging.getLogger(__name__)

TOPIC_NAME = re.compile(r"[a-zA-Z0-9._-]{1,249}")
# How often clients refresh what they know of topics (Kafka's default: 5 minutes). A client
# that looked while a lost cluster was being restored forgets the topic until then.
METADATA_MAX_AGE_MS = 10_000


def is_refusal(error: BaseException) -> bool:
    """The broker (or the client, before sending) refused this message for good: too large,
    an invalid topic, not authorised. Retrying the same message cannot help; an outage can.
    A timeout is no refusal, though aiokafka marks its own not retriable: it waits for a
    partition with no leader, or for a batch before it."""
    return isinstance(error, KafkaError) and not error.retriable and not isinstance(error, KafkaTimeoutError)


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

    def __init__(self, bootstrap: str, client_id: str, security: KafkaSecurity = PLAINTEXT) -> None:
        self.bootstrap = bootstrap
        self.client_id = client_id
        self.security = security
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
                    **self.security.client_options(),
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
            return await send_in_batches(producer, messages, list(headers))
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


async def create_topics(
    bootstrap: str,
    names: Sequence[str],
    partitions: int,
    replication: int = 1,
    security: KafkaSecurity = PLAINTEXT,
) -> None:
    """Create the topics that do not exist yet (idempotent), with `replication` copies and, when
    there are several, writes acknowledged by all but one (`min.insync.replicas`)."""
    admin = AIOKafkaAdminClient(
        bootstrap_servers=bootstrap, client_id="leadflow-admin", **security.client_options()
    )
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
    bootstrap: str, topics: Sequence[str], timeout: float = 10.0, security: KafkaSecurity = PLAINTEXT
) -> dict[tuple[str, int], int]:
    """The end offset of every partition of `topics` the broker has (a missing topic has none)."""
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap, client_id="leadflow-relay-check", **security.client_options()
    )
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
