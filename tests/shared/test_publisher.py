"""The publisher sends a batch per partition: each message lands where `send` would put it
(the partition its key hashes to), at the position it reports, in order within its partition,
also when a partition's messages fill several batches."""

import uuid

from aiokafka import AIOKafkaProducer
from aiokafka.partitioner import DefaultPartitioner

from shared.kafka import Publisher, create_topics
from shared.kafka_batches import partition_of
from tests.conftest import Servers
from tests.helpers import read_topic


async def test_messages_land_where_send_puts_them_in_order_at_the_positions_returned(
    servers: Servers,
) -> None:
    topic = f"publisher-{uuid.uuid4().hex[:8]}"
    await create_topics(servers.bootstrap, [topic], 4)
    keys = [f"lead-{i % 7}".encode() for i in range(300)]
    # 2 KB each: a partition's share fills several 16 KB batches
    values = [f"{i:05d}".encode() + b"x" * 2000 for i in range(300)]
    publisher = Publisher(servers.bootstrap, "publisher-test")
    reference = AIOKafkaProducer(bootstrap_servers=servers.bootstrap)
    await reference.start()
    try:
        landed = await publisher.publish([(topic, k, v) for k, v in zip(keys, values, strict=True)])
        by_send = {k: (await (await reference.send(topic, b"probe", key=k))).partition for k in set(keys)}
    finally:
        await publisher.stop()
        await reference.stop()

    assert [partition for _, partition, _ in landed] == [by_send[k] for k in keys]
    read = await read_topic(servers.bootstrap, topic, until=lambda ms: len(ms) >= 300 + len(by_send))
    at = {(m.partition, m.offset): m.value for m in read}
    assert [at[p, o] for _, p, o in landed] == values  # each where the publisher said
    for partition in set(by_send.values()):
        mine = sorted((o, at[partition, o]) for t, p, o in landed if p == partition)
        assert [v for _, v in mine] == [
            v for v, (_, p, _) in zip(values, landed, strict=True) if p == partition
        ]


def test_the_remembered_key_hash_picks_the_default_partitioners_partition() -> None:
    partitions = list(range(12))
    keys = [str(uuid.UUID(int=i * 7919)).encode() for i in range(2000)] + [b"", b"x"]
    for key in keys + keys:  # the second time from what was remembered
        assert partition_of(key, partitions) == DefaultPartitioner()(key, partitions, partitions)
