"""Every service's view of its outbox: how many rows wait and how many were set aside (viewer
token: metrics' health asks every service this, so it never reads another's schema), and the
admin's list of the rows set aside, to publish one again."""

import json
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Path, Query, Request
from pydantic import BaseModel, Field
from sqlalchemy import text

from shared.http import Admin, Viewer

router = APIRouter(prefix="/v1/outbox", tags=["outbox"], dependencies=[Admin])
status_router = APIRouter(prefix="/v1/outbox", tags=["outbox"], dependencies=[Viewer])


class OutboxStatus(BaseModel):
    backlog: int = Field(description="Rows not yet published.")
    dead_letters: int = Field(description="Rows the broker refused, set aside.")


_STATUS = text("SELECT (SELECT count(*) FROM outbox), (SELECT count(*) FROM outbox_dead_letters)")


@status_router.get("", response_model=OutboxStatus)
async def outbox_status(request: Request) -> OutboxStatus:
    async with request.app.state.runtime.db.transaction() as session:
        backlog, dead = (await session.execute(_STATUS)).one()
    return OutboxStatus(backlog=backlog, dead_letters=dead)


class DeadLetter(BaseModel):
    id: int = Field(description="The outbox row's id.")
    topic: str
    event_id: str | None = Field(None, description="The event's id, when the row holds an event.")
    event_type: str | None = None
    lead_id: str | None = None
    bytes: int = Field(description="The message's size.")
    error: str = Field(description="Why the broker refused it.")
    created_at: datetime
    failed_at: datetime


class DeadLetters(BaseModel):
    total: int
    items: list[DeadLetter]


# One statement, so that the total and the rows are one snapshot.
_LIST = text(
    "SELECT id, topic, value, error, created_at, failed_at, count(*) OVER () AS total "
    "FROM outbox_dead_letters ORDER BY id LIMIT :limit"
)
_REQUEUE = text(
    "WITH moved AS (DELETE FROM outbox_dead_letters WHERE id = :id "
    "RETURNING topic, key, value, headers, created_at) "
    "INSERT INTO outbox (topic, key, value, headers, created_at) "
    "SELECT topic, key, value, headers, created_at FROM moved RETURNING id"
)


@router.get("/dead-letters", response_model=DeadLetters)
async def list_dead_letters(
    request: Request, limit: Annotated[int, Query(ge=1, le=1000, description="At most this many rows.")] = 100
) -> DeadLetters:
    """The rows the relay could not publish (oldest first), with the broker's reason."""
    async with request.app.state.runtime.db.transaction() as session:
        rows = (await session.execute(_LIST, {"limit": limit})).all()
    total = rows[0].total if rows else 0
    return DeadLetters(total=total, items=[_summary(row._mapping) for row in rows])


@router.post("/dead-letters/{row_id}:republish", status_code=202)
async def republish(request: Request, row_id: Annotated[int, Path(ge=1, le=2**63 - 1)]) -> dict[str, Any]:
    """Put the row back in the outbox; the relay publishes it (or sets it aside again)."""
    runtime = request.app.state.runtime
    async with runtime.db.transaction() as session:
        new_id = (await session.execute(_REQUEUE, {"id": row_id})).scalar_one_or_none()
    if new_id is None:
        raise HTTPException(404, "No such dead letter")
    runtime.relay.wake()
    return {"id": row_id, "outbox_id": new_id, "status": "queued"}


def _summary(row: Any) -> DeadLetter:
    try:
        event = json.loads(row["value"])
    except ValueError:
        event = {}
    event = event if isinstance(event, dict) else {}
    return DeadLetter(
        id=row["id"],
        topic=row["topic"],
        event_id=event.get("id"),
        event_type=event.get("type"),
        lead_id=event.get("lead_id"),
        bytes=len(row["value"]),
        error=row["error"],
        created_at=row["created_at"],
        failed_at=row["failed_at"],
    )
