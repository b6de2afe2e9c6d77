"""Publishing a run of messages: a batch per partition (more where one fills), partitioned by key
as aiokafka's `send` would, at a fraction of the work of a future per message."""

import asyncio
from collections.abc import Sequence
from functools import lru_cache
from typing import Any

from aiokafka import AIOKafkaProducer
from aiokafka.partitioner import DefaultPartitioner, murmur2

Message = tuple[str, bytes | None, bytes]  # topic, key, value
Position = tuple[str, int, int]  # topic, partition, offset
Sent = list[tuple[asyncio.Future[Any], list[int]]]  # each batch's answer, the indexes of its messages


def partition_of(key: bytes | None, partitions: list[int]) -> int:
    """The partition `send` would choose for the key (aiokafka's and Java's default partitioner:
    murmur2 of the key), with the hash remembered: a lead's key comes with each of its events."""
    if key is None:
        return int(DefaultPartitioner()(None, partitions, partitions))
    return partitions[_key_hash(key) % len(partitions)]


@lru_cache(maxsize=16_384)
def _key_hash(key: bytes) -> int:
    return int(murmur2(key)) & 0x7FFFFFFF  # pure Python in aiokafka: about 5 µs a key


async def send_in_batches(
    producer: AIOKafkaProducer, messages: Sequence[Message], headers: list[tuple[str, bytes]]
) -> list[Position]:
    """Send the messages and wait for every batch's answer; returns where each message landed."""
    sent = await _send_batches(producer, messages, headers)
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


async def _send_batches(
    producer: AIOKafkaProducer, messages: Sequence[Message], headers: list[tuple[str, bytes]]
) -> Sent:
    """Send the messages a batch per partition, more where one fills. A partition's batches go
    in order, so its messages keep theirs."""
    partitions: dict[str, list[int]] = {}
    filling: dict[tuple[str, int], tuple[Any, list[int]]] = {}  # a batch builder, its messages
    sent: Sent = []
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
    return sent
