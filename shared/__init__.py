"""Leadflow plumbing shared by every service (settings, database, events, Kafka, outbox, inbox,
observability, dev stack). No business rules."""
