"""Broker clients the recovery tests drive: an operator's admin client that recreates a topic,
and the questions any client asks (a topic's metadata, a group's state)."""

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.client import AIOKafkaClient
from aiokafka.errors import KafkaError, TopicAlreadyExistsError
from aiokafka.protocol.metadata import MetadataRequest

from tests.conftest import eventually


async def recreate(bootstrap: str, topic: str, partitions: int) -> None:
    """Delete the topic and create it again, empty (as an operator might, by mistake)."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        await admin.delete_topics([topic])
        await eventually(lambda: absent(admin, topic))

        async def created() -> bool:
            try:
                await admin.create_topics([NewTopic(topic, partitions, 1)])
            except TopicAlreadyExistsError:  # still being deleted
                return False
            return True

        await eventually(created)
    finally:
        await admin.close()


async def absent(admin: AIOKafkaAdminClient, topic: str) -> bool:
    return topic not in await admin.list_topics()


async def ask_about(bootstrap: str, topic: str) -> None:
    """Ask for the topic's metadata allowing its creation, as another team's client with its
    defaults would (Leadflow's own clients never allow it: shared.kafka_patches)."""
    client = AIOKafkaClient(bootstrap_servers=bootstrap)
    await client.bootstrap()
    try:
        node = next(iter(client.cluster.brokers())).nodeId
        await client.send(node, MetadataRequest([topic], allow_auto_topic_creation=True))
    finally:
        await client.close()


async def partitions(bootstrap: str, topic: str) -> int:
    client = AIOKafkaClient(bootstrap_servers=bootstrap)
    await client.bootstrap()
    try:
        await client.add_topic(topic)
        return len(client.cluster.partitions_for_topic(topic) or ())
    finally:
        await client.close()


async def group_joined(bootstrap: str, group: str) -> bool:
    """Whether a member has joined `group` on this broker (a new cluster knows no group)."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        described = await admin.describe_consumer_groups([group])
    except KafkaError:  # no coordinator yet
        return False
    finally:
        await admin.close()
    # each group: (error_code, group_id, state, protocol_type, protocol, members)
    return any(g[2] == "Stable" and g[5] for response in described for g in response.groups)


async def committed(bootstrap: str, group: str, topic: str) -> dict[tuple[str, int], int]:
    """The group's committed offsets on `topic`'s partitions on this broker (asked as its
    members ask; without joining), by (topic, partition)."""
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=group, enable_auto_commit=False)
    await consumer.start()
    try:
        found = {}
        for partition in consumer.partitions_for_topic(topic) or await partitions_of(consumer, topic):
            offset = await consumer.committed(TopicPartition(topic, partition))
            if offset is not None:
                found[(topic, partition)] = offset
        return found
    finally:
        await consumer.stop()


async def partitions_of(consumer: AIOKafkaConsumer, topic: str) -> set[int]:
    await consumer.topics()  # metadata of every topic
    return consumer.partitions_for_topic(topic) or set()
