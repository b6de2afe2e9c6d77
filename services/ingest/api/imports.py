"""CSV imports: upload, then follow the report while it runs."""

from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, HTTPException, Query, Request
from fastapi.responses import JSONResponse

from services.ingest import imports
from services.ingest.api.common import KeyedSource
from services.ingest.schemas import ImportReport, ImportStarted, ItemError, RowRejection

router = APIRouter(prefix="/v1/imports", tags=["imports"])
CSV_TYPES = ("text/csv", "application/csv", "text/plain")


@router.post("", status_code=202, response_model=ImportStarted)
async def start_import(
    request: Request,
    source: KeyedSource,
    filename: Annotated[str | None, Query(max_length=255)] = None,
) -> JSONResponse:
    """Send the file as the body (`text/csv`, UTF-8, comma, semicolon or tab separated, a
    header row naming lead fields; `utm_*` and unknown columns are kept too). Answers once the
    file is received; rows are applied in the background: follow `GET /v1/imports/{id}`."""
    media_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if media_type not in CSV_TYPES:
        raise HTTPException(415, "Send the file as text/csv")
    try:
        raw = await imports.spool(request.stream(), request.app.state.settings.max_import_bytes)
    except imports.ImportTooLarge as error:
        raise HTTPException(413, str(error)) from error
    runtime = request.app.state.runtime
    import_id = await imports.start(runtime.db, source, filename)
    region = source.default_region or request.app.state.settings.default_phone_region
    runtime.spawn(imports.run(runtime.db, source, import_id, raw, region), f"import {import_id}")
    body = ImportStarted(import_id=import_id, status_url=f"/v1/imports/{import_id}")
    return JSONResponse(body.model_dump(mode="json"), status_code=202, headers={"Location": body.status_url})


@router.get("/{import_id}", response_model=ImportReport)
async def get_import(request: Request, import_id: UUID, source: KeyedSource) -> ImportReport:
    """Progress and the report: accepted (new leads), merged (known people), rejected rows with
    each field's reason (the first 1,000)."""
    async with request.app.state.runtime.db.transaction() as session:
        found = await imports.report(session, import_id)
    if found is None or found[0].source_id != source.id:
        raise HTTPException(404, "No such import")
    record, rejections = found
    rows = [RowRejection(row=r.row, errors=[ItemError(**e) for e in r.errors]) for r in rejections]
    return ImportReport(**record.model_dump(), rejections=rows)
