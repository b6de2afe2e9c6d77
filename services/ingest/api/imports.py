"""CSV imports: upload, then follow the report while it runs."""

from typing import Annotated, Any, Literal
from uuid import UUID

from fastapi import APIRouter, HTTPException, Query, Request
from fastapi.responses import JSONResponse
from pydantic import AfterValidator

from services.ingest import import_files, imports
from services.ingest.api.common import KeyedSource
from services.ingest.enquiry_dates import EnquiryDates
from services.ingest.import_encodings import encoding_named
from services.ingest.normalize import phone_region
from services.ingest.schemas import ImportReport, ImportStarted, ItemError, RowRejection
from shared.times import UTC_ZONE, Zone

router = APIRouter(prefix="/v1/imports", tags=["imports"])
CSV_TYPES = ("text/csv", "application/csv", "text/plain")
EncodingName = Annotated[str, AfterValidator(encoding_named)]
# Read from the stream by the route, so FastAPI would declare no body: Swagger's "Try it out"
# and generated clients could not send the file.
CSV_BODY = {
    "requestBody": {
        "required": True,
        "content": {"text/csv": {"schema": {"type": "string", "description": "The CSV file"}}},
    }
}


@router.post("", status_code=202, response_model=ImportStarted, responses={409: {}}, openapi_extra=CSV_BODY)
async def start_import(
    request: Request,
    source: KeyedSource,
    filename: Annotated[str | None, Query(max_length=255)] = None,
    delimiter: Annotated[
        Literal[",", ";", "tab"] | None,
        Query(
            description="The file's delimiter; when not given, the one a first line `sep=;` names"
            " (Excel's hint), else told from its header row."
        ),
    ] = None,
    encoding: Annotated[
        EncodingName | None,
        Query(
            max_length=20,
            description="The file's encoding when it is not UTF-8 and has no byte order mark:"
            " `cp1251` (a Russian- or Kazakh-locale Excel's CSV), `cp1254` (an Azerbaijani one),"
            " `utf-16` or `utf-8`. A file with a byte order mark is read in the one it marks"
            " (Excel's Unicode text is UTF-16 with one). Any other name is a 422 naming `encoding`.",
        ),
    ] = None,
    tz: Annotated[
        Zone | None,
        Query(
            description="The IANA time zone (Asia/Baku, Asia/Almaty) of the enquiry dates in the"
            " file's date column (`Date`, `Дата обращения`, `Müraciət tarixi`...) written without"
            " an offset; default UTC. Any other name is a 422 naming `tz`.",
        ),
    ] = None,
) -> JSONResponse:
    """Send the file as the body (`text/csv`; UTF-8, UTF-16 with a byte order mark, or the
    `encoding` named; comma, semicolon or tab separated, a header row naming lead fields, each
    once; `utm_*` and unknown columns are kept too, and the report lists the unknown ones), at
    most `LEADFLOW_MAX_IMPORT_BYTES` (50 MiB by default). Answers once the file is received;
    rows are applied in the background: follow `GET /v1/imports/{id}`. One import runs at a
    time per source (409 while one does)."""
    media_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if media_type not in CSV_TYPES:
        raise HTTPException(415, "Send the file as text/csv")
    settings, runtime = request.app.state.settings, request.app.state.runtime
    try:
        async with runtime.db.transaction() as session:  # before the upload, so a refusal is quick
            await imports.check_idle(session, source.id, settings.import_stall_seconds)
        raw = await import_files.spool(request.stream(), settings.max_import_bytes)
    except imports.ImportRunning as error:
        raise HTTPException(409, str(error)) from error
    except import_files.ImportTooLarge as error:
        raise HTTPException(413, str(error)) from error
    try:
        import_id = await imports.start(runtime.db, source, filename, settings.import_stall_seconds)
    except imports.ImportRunning as error:
        raw.close()
        raise HTTPException(409, str(error)) from error
    region = phone_region(source.default_region, source.default_language, settings.default_phone_region)
    separator = import_files.DELIMITERS[delimiter] if delimiter else None
    dates = EnquiryDates(zone=tz or UTC_ZONE, clock=request.app.state.clock)
    work = imports.run(runtime.db, source, import_id, raw, region, separator, encoding, dates)
    runtime.spawn(work, f"import {import_id}")
    body = ImportStarted(import_id=import_id, status_url=f"/v1/imports/{import_id}")
    return JSONResponse(body.model_dump(mode="json"), status_code=202, headers={"Location": body.status_url})


@router.get("/{import_id}", response_model=ImportReport, responses={404: {}})
async def get_import(request: Request, import_id: UUID, source: KeyedSource) -> ImportReport:
    """Progress and the report: accepted (new leads), merged (known people), the headers no
    lead field takes (and the field each probably meant), rejected rows with the line of the
    file each starts on and each field's reason (the first 1,000; a row with more or fewer
    values than the header names columns is one). A `capture`
    key is not told who was known: its merged rows count as accepted, as its single leads are
    answered."""
    async with request.app.state.runtime.db.transaction() as session:
        found = await imports.report(session, import_id)
    if found is None or found[0].source_id != source.id:
        raise HTTPException(404, "No such import")
    record, rejections = found
    rows = [
        RowRejection(row=r.row, line=r.line, errors=[ItemError(**e) for e in r.errors]) for r in rejections
    ]
    counts = as_told(record.model_dump(exclude={"unknown_headers"}), tell=source.scope == "history")
    return ImportReport(**counts, unknown_headers=record.unknown_headers or [], rejections=rows)


def as_told(counts: dict[str, Any], tell: bool) -> dict[str, Any]:
    """An import's counts as its key may see them. `tell` False (a `capture` key, which sits in
    a web page): merged rows are counted as accepted, so a list of addresses does not tell
    whether each person was already known, to this source or any other."""
    if tell:
        return {**counts, "merged_told": True}
    return {**counts, "accepted": counts["accepted"] + counts["merged"], "merged": 0, "merged_told": False}
