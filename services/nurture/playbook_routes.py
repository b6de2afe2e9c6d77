"""Nurture's playbooks routes (admin): the active version, and publishing a new one."""

from fastapi import APIRouter, Request

from services.nurture.followup import PlaybookBook
from services.nurture.playbook_checks import parse_new_playbooks
from services.nurture.schemas import PlaybooksAccepted, PlaybooksPublic
from shared.documents import DOCUMENT_BODY, read_document
from shared.http import Admin

admin = APIRouter(prefix="/v1", dependencies=[Admin])


@admin.get("/playbooks", response_model=PlaybooksPublic)
async def get_playbooks(request: Request) -> PlaybooksPublic:
    book: PlaybookBook = request.app.state.playbooks
    async with request.app.state.runtime.db.transaction() as session:
        stored = await book.stored(session, (await book.active(session)).version)
    return PlaybooksPublic(
        version=stored.version, created_at=stored.created_at, playbooks=stored.document, source=stored.source
    )


@admin.put("/playbooks", status_code=201, response_model=PlaybooksAccepted, openapi_extra=DOCUMENT_BODY)
async def put_playbooks(request: Request) -> PlaybooksAccepted:
    """A new version of the playbooks (YAML or JSON), validated first: 422 names every problem.
    Leads move to it as they are next classified."""
    document, source = await read_document(request)
    parse_new_playbooks(document)  # what a new version may not hold, besides what the model refuses
    book: PlaybookBook = request.app.state.playbooks
    async with request.app.state.runtime.db.transaction() as session:
        version = await book.publish(session, document, source)
    book.forget()
    return PlaybooksAccepted(version=version)
