"""CORS for landing pages: a source allows its own origins, on every answer its form or its key
gets, refusals included (a 429, a 415, a 503; a 413 to any page), so the page's fetch() can
read why."""

from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from services.ingest.models import Source

# A page's script reads these only when told it may (they are not CORS-safelisted).
EXPOSED = "Retry-After, Idempotent-Replayed"
STATE_KEY = "answer_headers"


# A body over the limit is refused before any route knows its source: any page may read that
# refusal (it tells nothing of a source, and carries no credentials), or its fetch() fails with
# "Failed to fetch" and the visitor's long message is lost without a word.
TOO_LARGE = 413
ANY_PAGE = {"Access-Control-Allow-Origin": "*"}


def allowed(source: Source, origin: str | None) -> bool:
    return origin is not None and origin.rstrip("/") in source.allowed_origins


def cors_headers(source: Source, origin: str | None) -> dict[str, str]:
    """CORS headers for the source's own origins only."""
    if allowed(source, origin):
        return {
            "Access-Control-Allow-Origin": str(origin),
            "Access-Control-Expose-Headers": EXPOSED,
            "Vary": "Origin",
        }
    return {"Vary": "Origin"}


def preflight_headers(origin: str, request_headers: str) -> dict[str, str]:
    """A preflight's yes: POST, with the headers the page's fetch() may send."""
    return {
        "Access-Control-Allow-Origin": origin,
        "Access-Control-Allow-Methods": "POST",
        "Access-Control-Allow-Headers": request_headers,
        "Access-Control-Max-Age": "600",
        "Vary": "Origin",
    }


def answer_with(scope: Scope, headers: dict[str, str]) -> None:
    """Every answer to this request carries `headers`, an error's answered by a handler too."""
    scope.setdefault("state", {})[STATE_KEY] = headers


class HeadersOnEveryAnswer:
    """Adds the headers a route chose (`answer_with`) to whatever answers the request. An
    error is answered by the app's handlers, outside the route: a 429 or a 503 without the
    CORS headers reaches the page's fetch() as "Failed to fetch", reason and Retry-After unread."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def sending(message: Message) -> None:
            if message["type"] == "http.response.start":
                chosen = scope.get("state", {}).get(STATE_KEY)
                if not chosen and message["status"] == TOO_LARGE:
                    chosen = ANY_PAGE
                headers = MutableHeaders(scope=message)
                for name, value in (chosen or {}).items():
                    if name not in headers:
                        headers[name] = value
            await send(message)

        await self.app(scope, receive, sending)
