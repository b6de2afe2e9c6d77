"""Topic names: one per producing service, plus a dead-letter topic per consumer group."""

LEAD_EVENTS = "ingest.lead-events"
LEAD_CLASSIFICATIONS = "scoring.lead-classifications"
TOUCH_EVENTS = "nurture.touch-events"

DOMAIN_TOPICS = (LEAD_EVENTS, LEAD_CLASSIFICATIONS, TOUCH_EVENTS)
PARTITIONS = 8


def dlq(group: str) -> str:
    """The dead-letter topic of a consumer group."""
    return f"{group}.dlq"
