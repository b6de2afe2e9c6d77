"""A consumer's dead letters kept in its schema (`inbox_dead_letters`), beside the copy staged for
`<group>.dlq`: written in the transaction that claims them, listed, replayed once the bug that
failed them is fixed (`shared.consumer.replaying`), discarded, and forgotten with their lead;
an archiving consumer's, taken by a rebuild that applies them again (kept anew if it fails them)."""

from dataclasses import dataclass
from typing import Any
from uuid import UUID

from aiokafka import ConsumerRecord
from sqlalchemy import text
from sqlmodel.ext.asyncio.session import AsyncSession

from shared.archive import Archived
from shared.events import Envelope
from shared.redact import redact

_KEEP = text(
    "INSERT INTO inbox_dead_letters (consumer_group, topic, partition, message_offset, key, value,"
    " event_id, event_type, lead_id, error)"
    " VALUES (:group, :topic, :partition, :offset, :key, :value, :event_id, :event_type, :lead_id, :error)"
)
# A rebuild's replay of the archive applies every archived event: the dead-lettered ones too.
_FORGET_ARCHIVED = text(
    "DELETE FROM inbox_dead_letters WHERE consumer_group = :group"
    " AND event_id IN (SELECT event_id FROM event_archive)"
)
_FIND = text(
    "SELECT id, consumer_group, topic, partition, message_offset, key, value FROM inbox_dead_letters"
    " WHERE id = :id AND consumer_group = :group"
)
_TAKE = text("DELETE FROM inbox_dead_letters WHERE id = :id RETURNING id")
_FAILED_AGAIN = text("UPDATE inbox_dead_letters SET error = :error, failed_at = now() WHERE id = :id")
_COUNT = text("SELECT count(*) FROM inbox_dead_letters")
# One statement, so that the total and the rows are one snapshot; never the value (the person).
_LIST = text(
    "SELECT id, consumer_group, topic, partition, message_offset, event_id, event_type, lead_id,"
    " octet_length(value) AS bytes, error, created_at, failed_at, count(*) OVER () AS total"
    " FROM inbox_dead_letters ORDER BY id LIMIT :limit"
)


async def keep(
    session: AsyncSession, group: str, record: ConsumerRecord, event: Envelope | None, error: str
) -> None:
    """Keep a message `group` dead-letters, in the caller's transaction (the one that claims it)."""
    where = {"topic": record.topic, "partition": record.partition, "offset": record.offset}
    # a tombstone: empty, as its DLQ copy
    await _keep(session, group, where, record.key or b"", record.value or b"", event, error)


async def keep_archived(session: AsyncSession, group: str, archived: Archived, error: str) -> None:
    """Keep an event a rebuild's replay of the archive failed, in the replay's transaction. It was
    read from the archive, not the broker: no partition or offset (-1); keyed as every message
    about a lead is, by its id."""
    where = {"topic": archived.topic, "partition": -1, "offset": -1}
    key = str(archived.event.lead_id).encode()
    await _keep(session, group, where, key, archived.value, archived.event, error)


async def forget_archived(session: AsyncSession, group: str) -> int:
    """In a rebuild's reset: delete `group`'s dead letters whose events are archived, which the
    replay applies (or keeps again, failing them); replayed later too, they would count twice.
    Returns how many."""
    return int((await session.execute(_FORGET_ARCHIVED, {"group": group})).rowcount)  # type: ignore[attr-defined]


async def _keep(
    session: AsyncSession,
    group: str,
    where: dict[str, Any],
    key: bytes,
    value: bytes,
    event: Envelope | None,
    error: str,
) -> None:
    await session.execute(
        _KEEP,
        {
            "group": group,
            **where,
            "key": key,
            "value": value,
            "event_id": event.id if event else None,
            "event_type": event.type if event else None,
            "lead_id": event.lead_id if event else None,
            "error": redact(error),  # an undecodable one's names the input
        },
    )


@dataclass(frozen=True)
class DeadLetter:
    id: int
    record: ConsumerRecord  # the message as the consumer had it


async def find(session: AsyncSession, group: str, letter_id: int) -> DeadLetter | None:
    """`group`'s dead letter `letter_id`, if there is one (not locked: see `take`)."""
    row = (await session.execute(_FIND, {"id": letter_id, "group": group})).first()
    if row is None:
        return None
    record: ConsumerRecord[bytes, bytes] = ConsumerRecord(
        topic=row.topic,
        partition=row.partition,
        offset=row.message_offset,
        timestamp=0,
        timestamp_type=0,
        key=row.key,
        value=row.value,
        checksum=None,
        serialized_key_size=len(row.key),
        serialized_value_size=len(row.value),
        headers=(),
    )
    return DeadLetter(row.id, record)


async def take(session: AsyncSession, letter_id: int) -> bool:
    """Delete the dead letter in the caller's transaction; whether it was still there (another
    replay, a discard or its lead's erasure may have taken it since it was found)."""
    return (await session.execute(_TAKE, {"id": letter_id})).first() is not None


async def failed_again(session: AsyncSession, letter_id: int, error: str) -> None:
    await session.execute(_FAILED_AGAIN, {"id": letter_id, "error": error})


async def listed(session: AsyncSession, limit: int) -> tuple[int, list[dict[str, Any]]]:
    """The total and the oldest `limit` dead letters, summed up without the message itself."""
    rows = [dict(row._mapping) for row in (await session.execute(_LIST, {"limit": limit})).all()]
    total = rows[0]["total"] if rows else 0
    return total, rows


async def counted(session: AsyncSession) -> int:
    return int((await session.execute(_COUNT)).scalar_one())


@dataclass(frozen=True)
class Replayed:
    """What a replay did: `applied` (by the handlers), `erased` (its lead is gone: nothing),
    `skipped` (no handler takes its type any more), or `duplicate` (applied meanwhile)."""

    id: int
    event_id: UUID
    event_type: str
    lead_id: UUID
    outcome: str
