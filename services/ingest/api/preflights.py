"""Preflights of the keyed routes a web page may call with a `capture` key (a chat widget, a
script of its own): the browser asks before it sends `X-Source-Key`, and without a yes the
page's fetch() fails before the key is seen."""

from typing import Annotated

from fastapi import APIRouter, Header, HTTPException, Request, Response

from services.ingest.api.common import check_ip
from services.ingest.api.cors import preflight_headers
from services.ingest.sources import origin_allowed_anywhere

router = APIRouter(include_in_schema=False)
FROM_PAGES = (
    "/v1/leads",
    "/v1/leads:batch",
    "/v1/activities",
    "/v1/consent",
    "/v1/chatbots/{source_id}/messages",
)
MAY_SEND = "content-type, x-source-key, idempotency-key"


async def preflight(request: Request, origin: Annotated[str | None, Header()] = None) -> Response:
    """Yes to an origin some source allows. The preflight carries no key: the answer to the
    request itself carries CORS only for the origins of the key's own source."""
    await check_ip(request)
    async with request.app.state.runtime.db.transaction() as session:
        if origin is None or not await origin_allowed_anywhere(session, origin):
            raise HTTPException(403, "No source accepts requests from that origin")
    return Response(status_code=204, headers=preflight_headers(origin, MAY_SEND))


for path in FROM_PAGES:
    router.add_api_route(path, preflight, methods=["OPTIONS"])
