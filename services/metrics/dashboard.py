"""The dashboard: one page, its assets served by this service (nothing from the internet),
reading the same API a user would and refreshing itself."""

from pathlib import Path

from fastapi import APIRouter
from fastapi.responses import FileResponse

from shared.query_parameters import AnyQuery

STATIC = Path(__file__).with_name("static")
router = APIRouter(dependencies=[AnyQuery])  # a page: links to it may carry anything


@router.get("/dashboard", include_in_schema=False)
async def dashboard() -> FileResponse:
    return FileResponse(STATIC / "dashboard.html", media_type="text/html")
