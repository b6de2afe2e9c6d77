"""Kafka clients: a publisher that survives broker outages, and topic creation."""

import asyncio
import logging
from collections.abc import Sequence

from aiokafka import AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import TopicAlreadyExistsError

log = logging.getLogger(__name__)

Message = tuple[str, bytes | None, bytes]  # topic, key, value


class Publisher:
    """An acks=all producer started on first use and restarted after a failure.

    Idempotence stays off: the embedded broker refuses InitProducerId, and every
    consumer dedupes by event id anyway.
    """

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
                )
                try:
                    await producer.start()
                except BaseException:
                    await producer.stop()
                    raise
                self._producer = producer
            return self._producer

    async def publish(self, messages: Sequence[Message], headers: Sequence[tuple[str, bytes]] = ()) -> None:
        """Send all messages and wait for every acknowledgement; raises if any failed."""
        producer = await self._started()
        try:
            futures = [
                await producer.send(t, value=v, key=k, headers=list(headers) or None) for t, k, v in messages
            ]
            await asyncio.gather(*futures)
        except Exception:
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


async def create_topics(bootstrap: str, names: Sequence[str], partitions: int) -> None:
    """Create the topics that do not exist yet (idempotent)."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, client_id="leadflow-admin")
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        missing = [NewTopic(n, partitions, 1) for n in names if n not in existing]
        if missing:
            try:
                await admin.create_topics(missing)
            except TopicAlreadyExistsError:
                log.info("topics created concurrently")
    finally:
        await admin.close()
