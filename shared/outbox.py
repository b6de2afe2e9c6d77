"""The transactional outbox: events written with the domain change, published by a relay woken
on commit (`shared.relay`), kept in a journal the relay can publish again when the broker loses
them (`shared.journal`)."""

import contextlib
import json
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, Column, DateTime, LargeBinary, func
from sqlalchemy.dialects.postgresql import JSONB
from sqlmodel import Field, SQLModel
from sqlmodel.ext.asyncio.session import AsyncSession

from shared.db import defer_insert, defer_notify
from shared.doorbell import carrying, channel_of
from shared.events import Envelope
from shared.http import InvalidInput

MAX_EVENT_BYTES = 512 * 1024
"""The largest event staged: half the broker's default message limit (1 MiB), so that headers,
batching and a later field added to an event never meet the limit."""

Headers = Sequence[tuple[str, bytes]]


class OutboxMessage(SQLModel, table=True):
    __tablename__ = "outbox"

    id: int | None = Field(default=None, sa_column=Column(BigInteger, primary_key=True))
    topic: str
    key: bytes = Field(sa_type=LargeBinary)
    value: bytes = Field(sa_type=LargeBinary)
    headers: list[list[str]] | None = Field(default=None, sa_type=JSONB)
    created_at: datetime = Field(
        sa_type=DateTime(timezone=True), sa_column_kwargs={"server_default": func.now()}
    )


class EventTooLarge(InvalidInput):
    """The request would stage an event larger than MAX_EVENT_BYTES; names its largest field."""


def add_to_outbox(
    session: AsyncSession,
    topic: str,
    event: Envelope,
    bell: str | None = None,
    ring_with: str = "",
    encoded: bytes | None = None,
) -> bytes:
    """Stage an event for publication in the caller's transaction (written at its commit); returns
    the message staged.
    Raises EventTooLarge, naming the event's largest field, past MAX_EVENT_BYTES. `bell`: a
    doorbell the relay rings too once it is published (`shared.topics.HOT_LEADS_BELL`);
    `ring_with`: see `stage`; `encoded`: the event as sent, its data in (`Envelope.to_bytes_with`)."""
    value = event.to_bytes() if encoded is None else encoded
    if len(value) > MAX_EVENT_BYTES:
        data = event.data if encoded is None else json.loads(value)["data"]
        sizes = {name: len(json.dumps(field, default=str)) for name, field in data.items()}
        largest = max(sizes, key=sizes.__getitem__, default="data")
        reason = f"makes a {event.type} event of {len(value):,} bytes; at most {MAX_EVENT_BYTES:,}"
        raise EventTooLarge([(largest, reason)])
    stage(session, topic, str(event.lead_id).encode(), value, bell=bell, ring_with=ring_with)
    return value


BELL = "leadflow-bell"  # kept with the row (and in the journal), never published


def stage(
    session: AsyncSession,
    topic: str,
    key: bytes,
    value: bytes,
    headers: Headers = (),
    bell: str | None = None,
    ring_with: str = "",
) -> None:
    """Stage one raw message in the caller's transaction (`bell`: see `add_to_outbox`). A
    message for a bell rings `carrying(bell)` too as the transaction commits, with the message
    itself when it fits a ring: its lane applies it without waiting for the relay and the
    broker (the relay still publishes it, and rings the bell). `ring_with`: a line (no line
    break in it) the ring says before the message, for its lane (`shared.consumer.rung`)."""
    if bell:
        headers = [*headers, (BELL, bell.encode())]
        ring_with_message(session, bell, value, ring_with)
    # Every row names the column (None for most), so a transaction's rows share one shape: one
    # statement (or COPY) writes them all.
    row: dict[str, Any] = {"topic": topic, "key": key, "value": value, "headers": _encode_headers(headers)}
    defer_insert(session, OutboxMessage.__table__, row)  # type: ignore[attr-defined]


def ring_with_message(session: AsyncSession, bell: str, value: bytes, note: str = "") -> bool:
    """Ring `carrying(bell)` as the transaction commits, saying the message itself (after `note`,
    a line for whoever takes it: `shared.consumer.rung`), when it fits a ring. Whether it will."""
    with contextlib.suppress(UnicodeDecodeError):
        said = f"{note}\n{value.decode()}" if note else value.decode()
        if len(said.encode()) <= RING_SAYS_AT_MOST and "\n" not in note:
            defer_notify(session, channel_of(carrying(bell)), said)
            return True
    return False


def _encode_headers(headers: Headers) -> list[list[str]] | None:
    return [[name, value.decode(errors="replace")] for name, value in headers] or None


RING_SAYS_AT_MOST = 7000  # bytes; PostgreSQL's NOTIFY payloads stop just under 8000
