"""Idempotency keys: a retried request gets the first answer back and changes nothing.

The key and the first answer are written in the transaction that did the work, so either
both are committed or neither. Two copies in flight at once: the second one's insert
conflicts, its group is retried alone, and then it finds the first answer.

An answer naming a person since erased is kept, so that a retry sent before the erasure does
not make them a lead again, but not the digest of its request, made of what they sent: any
request under its key then gets that answer (a key reused for another request is no longer
told apart from a retry; it is the client's error, and running it could bring the person back).

A request that cannot carry a key (a plain HTML form: a browser sends no header of the page's)
is given one made of what makes it the same request again (`repeat_key`), remembered for a
short while only (`REPEAT_WINDOW`): a double click, not a person who comes back. Those keys are
digests of what was sent, as the fingerprints are, and go with the hourly purge once their
window has passed, an erased person's too."""

import hashlib
import json
from dataclasses import dataclass
from datetime import timedelta
from typing import Any
from uuid import UUID

from sqlalchemy import delete, func, select
from sqlmodel.ext.asyncio.session import AsyncSession

from services.ingest.models import IdempotencyRecord
from shared.db import Database, defer_insert
from shared.events import utcnow


class KeyReused(Exception):
    """The key was first used for a different request. `field`: what the client sent the key
    as (the `Idempotency-Key` header, or an id in the body that stands for one)."""

    def __init__(self, key: str, field: str = "Idempotency-Key") -> None:
        super().__init__(key)
        self.field = field


@dataclass(frozen=True)
class Answer:
    status: int
    body: dict[str, Any]
    replayed: bool = False


REPEAT_PREFIX = "repeat:"
REPEAT_WINDOW = timedelta(minutes=10)


def repeat_key(*parts: Any) -> str:
    """The key of a request that carries none, made of `parts` (what makes it the same again)."""
    return REPEAT_PREFIX + fingerprint(list(parts))


def fingerprint(request: Any) -> str:
    """A digest of the request's meaning (its parsed body, keys sorted)."""
    canonical = json.dumps(request, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()


async def recall(
    session: AsyncSession, source_id: UUID, key: str, digest: str, within: timedelta
) -> Answer | None:
    """The first answer given under this key `within` the last while. An older one is
    forgotten here and now, not at the next purge: the key is new again."""
    table = IdempotencyRecord.__table__  # type: ignore[attr-defined]
    this_key = (table.c.source_id == source_id, table.c.key == key)
    fresh = (table.c.created_at >= func.now() - within).label("fresh")
    row = (
        await session.execute(
            select(table.c.fingerprint, table.c.status, table.c.body, fresh).where(*this_key)
        )
    ).first()
    if row is None:
        return None
    if not row.fresh:
        await session.execute(delete(table).where(*this_key))
        return None
    if row.fingerprint is not None and row.fingerprint != digest:
        raise KeyReused(key)
    return Answer(row.status, row.body, replayed=True)


def remember(session: AsyncSession, source_id: UUID, key: str, digest: str, answer: Answer) -> None:
    defer_insert(
        session,
        IdempotencyRecord.__table__,  # type: ignore[attr-defined]
        {
            "source_id": source_id,
            "key": key,
            "fingerprint": digest,
            "status": answer.status,
            "body": answer.body,
            "created_at": utcnow(),
        },
    )


async def forget_older_than(db: Database, hours: int) -> int:
    """Keys older than `hours`, and the repeat keys past their window. Those are looked for
    among the last few hours' only (the BRIN index on created_at reads just them): the purge
    runs hourly, and one it missed leaves them to the `hours` purge."""
    table = IdempotencyRecord.__table__  # type: ignore[attr-defined]
    repeats = (
        table.c.key.startswith(REPEAT_PREFIX, autoescape=True),
        table.c.created_at < func.now() - REPEAT_WINDOW,
        table.c.created_at >= func.now() - REPEAT_WINDOW - timedelta(hours=3),
    )
    async with db.transaction() as session:
        result = await session.execute(
            delete(table).where(table.c.created_at < func.now() - timedelta(hours=hours))
        )
        passed = await session.execute(delete(table).where(*repeats))
    return int(result.rowcount or 0) + int(passed.rowcount or 0)  # type: ignore[attr-defined]
