"""The admin's view of what a service's consumer dead-lettered (`shared.consumer.dead_letters`):
the list (never the message, which holds the person), a replay through the service's own
handlers once the bug that failed them is fixed, a discard; and their count (viewer token:
metrics' health asks every consumer this, as it asks for the outbox's)."""

from dataclasses import asdict
from datetime import datetime
from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, HTTPException, Path, Query, Request, Response
from pydantic import BaseModel, Field

from shared.consumer import dead_letters
from shared.consumer.replaying import NoSuchDeadLetter, NotReplayed
from shared.http import Admin, Viewer, problem

router = APIRouter(prefix="/v1/inbox", tags=["inbox"], dependencies=[Admin])
status_router = APIRouter(prefix="/v1/inbox", tags=["inbox"], dependencies=[Viewer])
LetterId = Annotated[int, Path(ge=1, le=2**63 - 1)]
NOT_FOUND = "No such dead letter"


class InboxDeadLetter(BaseModel):
    id: int
    consumer_group: str
    topic: str = Field(description="Where the message came from.")
    partition: int
    offset: int = Field(validation_alias="message_offset")
    event_id: UUID | None = Field(None, description="The event's id, when the message could be read.")
    event_type: str | None = None
    lead_id: UUID | None = None
    bytes: int = Field(description="The message's size.")
    error: str = Field(description="Why it failed, the last time it was tried.")
    created_at: datetime = Field(description="When it was dead-lettered.")
    failed_at: datetime = Field(description="When it last failed (dead-lettered, or replayed).")


class InboxDeadLetters(BaseModel):
    total: int
    items: list[InboxDeadLetter]


class Replay(BaseModel):
    id: int
    event_id: UUID
    event_type: str
    lead_id: UUID
    outcome: str = Field(
        description="`applied`; or nothing applied: `erased` (its lead is), `skipped` (no handler"
        " takes its type), `duplicate` (applied meanwhile)."
    )


class InboxStatus(BaseModel):
    dead_letters: int = Field(description="Messages the consumer could not apply, kept to be replayed.")


@status_router.get("", response_model=InboxStatus)
async def inbox_status(request: Request) -> InboxStatus:
    async with request.app.state.runtime.db.transaction() as session:
        return InboxStatus(dead_letters=await dead_letters.counted(session))


@router.get("/dead-letters", response_model=InboxDeadLetters)
async def list_inbox_dead_letters(
    request: Request, limit: Annotated[int, Query(ge=1, le=1000, description="At most this many rows.")] = 100
) -> InboxDeadLetters:
    """The messages the consumer could not apply (oldest first), with the last error."""
    async with request.app.state.runtime.db.transaction() as session:
        total, rows = await dead_letters.listed(session, limit)
    return InboxDeadLetters(total=total, items=[InboxDeadLetter.model_validate(row) for row in rows])


@router.post("/dead-letters/{letter_id}:replay", response_model=Replay)
async def replay_inbox_dead_letter(request: Request, letter_id: LetterId) -> Replay | Response:
    """Apply the message now, through the handlers this service runs, in one transaction; the
    row goes once it is applied. One that fails again is a 422 naming the error, and kept."""
    for consumer in request.app.state.runtime.dead_lettering:
        try:
            replayed = await consumer.replay(letter_id)
        except NoSuchDeadLetter:
            continue
        except NotReplayed as error:
            return problem(422, "The dead letter was not applied", str(error), id=letter_id)
        return Replay(**asdict(replayed))
    raise HTTPException(404, NOT_FOUND)


@router.delete("/dead-letters/{letter_id}", status_code=204)
async def discard_inbox_dead_letter(request: Request, letter_id: LetterId) -> Response:
    """Drop the message for good (its DLQ copy stays on the broker until its retention)."""
    async with request.app.state.runtime.db.transaction() as session:
        if not await dead_letters.take(session, letter_id):
            raise HTTPException(404, NOT_FOUND)
    return Response(status_code=204)
