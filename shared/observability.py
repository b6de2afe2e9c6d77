"""JSON logs carrying the correlation id, and the Prometheus metrics every service exposes."""

import logging
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import IO, Any
from uuid import UUID

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from pythonjsonlogger.json import JsonFormatter

from shared.redact import redact

correlation_id: ContextVar[str | None] = ContextVar("correlation_id", default=None)


@contextmanager
def correlated(correlation: UUID) -> Iterator[None]:
    """Log lines inside the block carry this correlation id (set per event, also by handlers
    that are given a run of events)."""
    token = correlation_id.set(str(correlation))
    try:
        yield
    finally:
        correlation_id.reset(token)


class _ContextFilter(logging.Filter):
    """Adds the service and correlation id; redacts emails and phone numbers from the message
    (an error quoted into it may carry them)."""

    def __init__(self, service: str) -> None:
        super().__init__()
        self.service = service

    def filter(self, record: logging.LogRecord) -> bool:
        record.service = self.service
        record.__dict__.pop("color_message", None)
        record.correlation_id = correlation_id.get()
        record.msg, record.args = redact(record.getMessage()), None
        return True


class _RedactingJsonFormatter(JsonFormatter):
    """Tracebacks quote exception messages, and those may quote personal data."""

    def formatException(self, ei: Any) -> Any:
        return _redacted(super().formatException(ei))

    def formatStack(self, stack_info: Any) -> Any:
        return _redacted(super().formatStack(stack_info))


def _redacted(text: str | list[str]) -> str | list[str]:
    return redact(text) if isinstance(text, str) else [redact(line) for line in text]


def log_handler(service: str, stream: IO[str]) -> logging.Handler:
    """Writes each record to `stream` as one JSON line, emails and phone numbers redacted."""
    handler = logging.StreamHandler(stream)
    handler.setFormatter(
        _RedactingJsonFormatter(
            "%(asctime)s %(levelname)s %(name)s %(message)s %(service)s %(correlation_id)s",
            rename_fields={"asctime": "time", "levelname": "level", "name": "logger"},
        )
    )
    handler.addFilter(_ContextFilter(service))
    return handler


def configure_logging(service: str, level: str = "INFO") -> None:
    """Route every log record to stdout as one JSON object. Never log PII: ids only."""
    handler = log_handler(service, sys.stdout)
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    for noisy in ("aiokafka", "kafka", "uvicorn.access", "httpx"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


class Telemetry:
    """One registry per service instance, so tests can run several services in one process."""

    def __init__(self, service: str) -> None:
        self.service = service
        self.registry = CollectorRegistry()
        self.events_in = Counter(
            "leadflow_events_in_total",
            "Events consumed, by topic and type and outcome (applied, duplicate, dead_lettered).",
            ["topic", "type", "outcome"],
            registry=self.registry,
        )
        self.events_out = Counter(
            "leadflow_events_out_total",
            "Events published to Kafka, by topic.",
            ["topic"],
            registry=self.registry,
        )
        self.handler_latency = Histogram(
            "leadflow_handler_seconds",
            "Time to apply one consumed batch, including its database commit.",
            ["group"],
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5),
            registry=self.registry,
        )
        self.consumer_lag = Gauge(
            "leadflow_consumer_lag",
            "Messages behind the partition's high watermark after the last commit.",
            ["group", "topic", "partition"],
            registry=self.registry,
        )
        self.outbox_backlog = Gauge(
            "leadflow_outbox_backlog",
            "Outbox rows not yet published.",
            registry=self.registry,
        )
        self.outbox_dead_letters = Gauge(
            "leadflow_outbox_dead_letters",
            "Outbox rows the broker refused, set aside (GET /v1/outbox/dead-letters).",
            registry=self.registry,
        )
