"""Topic names: one per producing service, plus a dead-letter topic per consumer group."""

LEAD_EVENTS = "ingest.lead-events"
LEAD_CLASSIFICATIONS = "scoring.lead-classifications"
TOUCH_EVENTS = "nurture.touch-events"

DOMAIN_TOPICS = (LEAD_EVENTS, LEAD_CLASSIFICATIONS, TOUCH_EVENTS)

HOT_LEADS_BELL = "scoring.hot-leads"
"""Not a topic: a doorbell (`shared.doorbell`) rung, beside LEAD_CLASSIFICATIONS's own, when what
was published there hands a lead to a rep (`shared.events.for_a_rep`). The hand-off lane waits
for this one only: the classifications of cold and warm leads no longer wake it one by one."""
NEW_LEADS_BELL = "ingest.new-leads"
"""Not a topic either: ingest's commit rings it with a new lead's capture itself (and its key,
sealed), for scoring to apply ahead of the relay and the broker; the broker's copy is then a
duplicate to scoring's inbox. Only a new lead's first event: no event of the lead can be
waiting on the broker before it."""
PARTITIONS = 8


def dlq(group: str) -> str:
    """The dead-letter topic of a consumer group."""
    return f"{group}.dlq"
