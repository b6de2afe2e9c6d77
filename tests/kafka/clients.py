"""Broker clients the recovery tests drive: an operator's admin client that recreates a topic,
and the questions any client asks (a topic's metadata, a group's state)."""

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
    defaults would (Leadflow's own clients never allow it: shared.kafka)."""
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
