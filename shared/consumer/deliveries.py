"""What a consumer takes in: a handler's signature, and a consumed message decoded if it could be."""

from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from aiokafka import ConsumerRecord
from pydantic import ValidationError
from sqlmodel.ext.asyncio.session import AsyncSession

from shared.events import Envelope

Handler = Callable[[AsyncSession, list[Envelope]], Awaitable[None]]
"""Applies a run of consecutive events (of the types it is registered for), in order: one
statement can serve many."""

RUNG = "(rung)"  # the topic label of an event applied as it rang


@dataclass
class Delivery:
    """One consumed message, decoded if it could be; or an event rung (no record)."""

    record: ConsumerRecord | None
    event: Envelope | None
    error: str | None = None

    @property
    def topic(self) -> str:
        return self.record.topic if self.record is not None else RUNG


def decode(record: ConsumerRecord) -> Delivery:
    try:
        return Delivery(record, Envelope.from_bytes(record.value))
    except ValidationError as error:
        return Delivery(record, None, f"undecodable envelope: {_without_input(error)}"[:1000])


def _without_input(error: ValidationError) -> str:
    """What was wrong, field by field, never quoting the message (pydantic's text quotes its
    input, the person's name among it, into the DLQ header, the log and the admin's list)."""
    return "; ".join(
        f"{'.'.join(map(str, e['loc'])) or 'message'}: {e['msg']}"
        for e in error.errors(include_input=False, include_url=False)
    )
