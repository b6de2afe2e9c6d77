"""A service's FastAPI app: the shared error format, body limit, health, metrics and dead-letter routes."""

from collections.abc import Awaitable, Callable, Iterable, Mapping

from fastapi import APIRouter, Depends, FastAPI, Request
from uvicorn.middleware.proxy_headers import ProxyHeadersMiddleware

from shared import dead_letters, inbox_dead_letters
from shared.api_docs import serve_api_docs
from shared.cli import migrations_dir
from shared.error_docs import answers, document_errors
from shared.http import BodySizeLimit, Check, health_router, refuse_unstorable_parameters
from shared.migrations import schema_check
from shared.problem_handlers import install_problem_handlers
from shared.query_parameters import RefuseUnknownQueryParameters
from shared.ratelimit import RateLimits
from shared.service import ServiceRuntime

CONVENTIONS = (
    "Errors are `application/problem+json` (RFC 9457) naming each field. A query parameter an"
    " API route does not take is a 422 naming it and the ones the route takes, never ignored,"
    " as is one sent more than once where the route takes one value;"
    " pages people open (the dashboard, unsubscribe links), HTML form posts, chatbot webhooks and"
    " health checks ignore the ones they do not read (`utm_*`, `fbclid` and the like)."
)
OPENAPI_PATH = "/openapi.json"


def create_service_app(
    runtime: ServiceRuntime,
    title: str,
    routers: Iterable[APIRouter],
    larger_bodies: Mapping[str, int] | None = None,
    notices: Mapping[str, Check] | None = None,
) -> FastAPI:
    """A FastAPI app with the shared error format, body limit, health and metrics routes;
    `larger_bodies` maps paths that take files to their own size limit; `routers` come busiest
    first; `notices` are checks /readyz reports that do not make the service unready."""
    docs = bool(runtime.settings.public_docs)
    app = FastAPI(
        title=title,
        description=CONVENTIONS,
        lifespan=runtime.lifespan,
        dependencies=[Depends(_parameter_checks())],
        docs_url=None,  # served from the service itself, after its routes (shared/api_docs.py)
        redoc_url=None,
        openapi_url=OPENAPI_PATH if docs else None,
    )
    app.state.settings = runtime.settings
    app.state.runtime = runtime
    app.state.token_guesses = RateLimits("", runtime.settings.failed_tokens_per_ip)  # shared.http
    install_problem_handlers(app)
    app.add_middleware(BodySizeLimit, max_bytes=runtime.settings.max_body_bytes, larger=larger_bodies)
    if proxies := [p.strip() for p in runtime.settings.trusted_proxies.split(",") if p.strip()]:
        # The client's address is the last one in X-Forwarded-For that a trusted proxy added.
        app.add_middleware(ProxyHeadersMiddleware, trusted_hosts=proxies)
    # The service's own routes first, in the order given (its busiest first): a request is
    # matched against each router in turn, so a lead's POST no longer walks past the health
    # and outbox routes (FastAPI's matching cost about 0.1 ms per router passed).
    for router in routers:
        app.include_router(router)
    schema = schema_check(runtime.db, migrations_dir(runtime.db.schema))
    runtime.schema_check = schema  # its consumers and loops wait for the schema too
    checks = {"database": runtime.db.ping, "schema": schema, "broker": runtime.publisher.ping}
    checks |= {f"consumer:{c.group}": c.ping for c in runtime.consumers}
    checks |= dict(notices or {})
    informational = frozenset(notices or ()) | (frozenset() if runtime.needs_broker else {"broker"})
    app.include_router(health_router(checks, lambda: runtime.telemetry.registry, informational))
    app.include_router(dead_letters.router)
    app.include_router(dead_letters.status_router)
    if runtime.dead_lettering:
        app.include_router(inbox_dead_letters.router)
        app.include_router(inbox_dead_letters.status_router)
    if docs:
        document_errors(app)
        serve_api_docs(app, OPENAPI_PATH)
    return app


def _parameter_checks() -> Callable[[Request], Awaitable[None]]:
    """Every request's query and path parameters: those its route does not take, then any text
    that cannot be stored. One dependency, not two: FastAPI's own work is per dependency and per
    request (the second cost 6-11 µs a request on the bench machine)."""
    refuse_unknown = RefuseUnknownQueryParameters()

    @answers(422)
    async def check_parameters(request: Request) -> None:
        await refuse_unknown(request)
        await refuse_unstorable_parameters(request)

    return check_parameters
