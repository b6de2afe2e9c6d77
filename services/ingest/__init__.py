"""Ingest: the door. HTTP in, validation, identity, durable outbox to Kafka."""
