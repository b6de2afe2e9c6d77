"""The event envelope every message travels in, and the base of the payloads it carries
(changes are additive; a breaking change is a new type)."""

from datetime import UTC, datetime
from typing import Any
from uuid import UUID, uuid4

from pydantic import BaseModel, ConfigDict, Field


def utcnow() -> datetime:
    return datetime.now(UTC)


class Envelope(BaseModel):
    """One message on any topic; the Kafka key is `lead_id` so a lead's events stay ordered."""

    id: UUID = Field(default_factory=uuid4)
    type: str
    version: int = 1
    occurred_at: datetime = Field(default_factory=utcnow)
    lead_id: UUID
    correlation_id: UUID
    causation_id: UUID | None = None
    producer: str
    data: dict[str, Any] = Field(default_factory=dict)

    @property
    def sealed_with(self) -> bytes | None:
        """The lead's key its personal data was sealed with, once a consumer opened it."""
        return None

    @classmethod
    def of(
        cls,
        type: str,
        lead_id: UUID,
        correlation_id: UUID,
        producer: str,
        payload: BaseModel | None,
        causation_id: UUID | None = None,
    ) -> "Envelope":
        """An event carrying `payload` (fields left empty are left out); None: no data, the
        payload to go in encoded (`to_bytes_with`)."""
        return cls(
            type=type,
            lead_id=lead_id,
            correlation_id=correlation_id,
            causation_id=causation_id,
            producer=producer,
            data={} if payload is None else payload.model_dump(mode="json", exclude_none=True),
        )

    def follow_up(self, type: str, producer: str, payload: BaseModel | None) -> "Envelope":
        """An event caused by this one: same lead and correlation id, causation = this id."""
        return Envelope.of(type, self.lead_id, self.correlation_id, producer, payload, causation_id=self.id)

    def to_bytes(self) -> bytes:
        return self.model_dump_json().encode()

    def to_bytes_with(self, data: bytes) -> bytes:
        """This event as `to_bytes` gives it carrying `data`, a JSON object already encoded
        (`encoded_data`), in place of its own empty one. Byte for byte the event `of` builds
        with the payload, without the payload's trip through a dict and validation again."""
        if self.data:
            raise ValueError("an event given its data encoded has none of its own")
        return self.to_bytes().removesuffix(b"{}}") + data + b"}"

    @staticmethod
    def encoded_data(payload: BaseModel) -> bytes:
        """`payload` as `of` puts it in an event's data, encoded (for `to_bytes_with`)."""
        return payload.model_dump_json(exclude_none=True).encode()

    @classmethod
    def from_bytes(cls, raw: bytes) -> "Envelope":
        return cls.model_validate_json(raw)


class OpenedEnvelope(Envelope):
    """An event whose sealed parts a consumer opened, with the key that opened them (never sent).
    A subclass rather than a private attribute on every envelope: those cost each event built."""

    opened_with: bytes = Field(exclude=True, repr=False)

    @property
    def sealed_with(self) -> bytes | None:
        return self.opened_with


class Payload(BaseModel):
    """Base of payload models: unknown fields from newer producers are kept, not rejected."""

    model_config = ConfigDict(extra="allow")
