"""What the broker tells of the pipeline's health: each consumer group's lag per topic, and each
dead-letter topic's size, read without joining any group."""

import asyncio

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.structs import OffsetAndMetadata

from shared import topics
from shared.kafka_security import PLAINTEXT, KafkaSecurity

GROUPS = {
    "scoring": [topics.LEAD_EVENTS],
    "nurture": [topics.LEAD_CLASSIFICATIONS, topics.LEAD_EVENTS],
    "metrics": list(topics.DOMAIN_TOPICS),
}
BROKER_TIMEOUT = 5.0
Committed = dict[TopicPartition, OffsetAndMetadata]


async def broker_figures(
    bootstrap: str, problems: list[str], security: KafkaSecurity = PLAINTEXT
) -> tuple[dict[str, dict[str, int]], dict[str, int]]:
    """Each group's lag and each dead-letter topic's size (a topic missing is a problem line)."""
    ends, committed = await _offsets(bootstrap, problems, security)
    lags = {group: _lag(group_topics, ends, committed[group]) for group, group_topics in GROUPS.items()}
    dlq = {
        g: sum(ends.get(TopicPartition(topics.dlq(g), p), 0) for p in range(topics.PARTITIONS))
        for g in GROUPS
    }
    return lags, dlq


async def _offsets(
    bootstrap: str, problems: list[str], security: KafkaSecurity
) -> tuple[dict[TopicPartition, int], dict[str, Committed]]:
    """The log ends and each group's committed offsets: one ListOffsets for the log ends of the
    partitions the broker has (a topic missing is a problem line: asked for, it would be waited
    for), one OffsetFetch per group (read without joining it: no rebalance is caused), bounded
    by BROKER_TIMEOUT so a slow broker makes a problem line, not a slow answer."""
    wanted = {*{t for ts in GROUPS.values() for t in ts}, *(topics.dlq(g) for g in GROUPS)}
    client = {
        "bootstrap_servers": bootstrap,
        "client_id": "leadflow-metrics-health",
        **security.client_options(),
    }
    reader, admin = AIOKafkaConsumer(**client), AIOKafkaAdminClient(**client)
    try:
        async with asyncio.timeout(BROKER_TIMEOUT):
            await reader.start()
            await admin.start()
            present = await reader.topics()
            problems.extend(f"broker: topic {name} missing" for name in sorted(wanted - present))
            partitions = [
                TopicPartition(name, p)
                for name in sorted(wanted & present)
                for p in sorted(reader.partitions_for_topic(name) or ())
            ]
            ends = await reader.end_offsets(partitions)
            committed = {  # partitions named: Tansu cannot answer "all of the group's"
                group: await admin.list_consumer_group_offsets(group, partitions=_partitions(group_topics))
                for group, group_topics in GROUPS.items()
            }
    finally:
        await reader.stop()
        await admin.close()
    return ends, committed


def _partitions(names: list[str]) -> list[TopicPartition]:
    return [TopicPartition(t, p) for t in names for p in range(topics.PARTITIONS)]


def _lag(
    group_topics: list[str],
    ends: dict[TopicPartition, int],
    committed: dict[TopicPartition, OffsetAndMetadata],
) -> dict[str, int]:
    """Messages behind per topic: the log end less what the group committed (nothing: all)."""
    lag = {}
    for topic in group_topics:
        behind = 0
        for partition in range(topics.PARTITIONS):
            tp = TopicPartition(topic, partition)
            done = committed[tp].offset if tp in committed and committed[tp].offset >= 0 else 0
            behind += max(ends.get(tp, 0) - done, 0)
        lag[topic] = behind
    return lag
