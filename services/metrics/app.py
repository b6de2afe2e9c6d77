"""The metrics FastAPI app; its lifespan runs the consumer of every domain topic."""

from collections.abc import Callable
from datetime import datetime

from fastapi import FastAPI, Request, Response
from fastapi.staticfiles import StaticFiles

from services.metrics.api import router
from services.metrics.config import MetricsSettings
from services.metrics.dashboard import STATIC
from services.metrics.dashboard import router as dashboard_router
from services.metrics.handlers import event_handlers
from services.metrics.health import PipelineHealth
from services.metrics.proposal_report import router as proposals_router
from services.metrics.spend import NoSuchEntry
from shared import topics
from shared.events import utcnow
from shared.http import problem
from shared.service import ServiceRuntime
from shared.service_app import create_service_app

HEALTH_GAUGES_EVERY_SECONDS = 60


def create_app(settings: MetricsSettings, clock: Callable[[], datetime] = utcnow) -> FastAPI:
    """`clock`: the time reports are read at (which hand-offs are still inside their SLA)."""
    runtime = ServiceRuntime("metrics", settings)
    runtime.consume("metrics", topics.DOMAIN_TOPICS, event_handlers(), archive=True)
    health = PipelineHealth(runtime.db, settings, runtime.telemetry)
    # The gauges' own refresh (GET /v1/health answers fresh, cached 5 s): each asks the broker
    # and every service, so it is what an idle stack would spend most on.
    runtime.add_periodic("pipeline health", HEALTH_GAUGES_EVERY_SECONDS, lambda: _quietly(health))
    app = create_service_app(runtime, "Leadflow metrics", [router, proposals_router, dashboard_router])
    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    app.state.health = health
    app.state.clock = clock
    app.add_exception_handler(NoSuchEntry, _no_such_entry)
    return app


async def _no_such_entry(request: Request, error: Exception) -> Response:
    return problem(404, "No such spend entry")


async def _quietly(health: PipelineHealth) -> None:
    await health.check()  # refreshes the Prometheus gauges; nothing to log
