"""The scoring FastAPI app; its lifespan runs the lead-events consumer and the outbox relay."""

from fastapi import FastAPI

from services.scoring.api import router
from services.scoring.config import ScoringSettings
from services.scoring.handlers import event_handlers
from services.scoring.rules import Windows
from shared import topics
from shared.service import ServiceRuntime, create_service_app


def create_app(settings: ScoringSettings) -> FastAPI:
    runtime = ServiceRuntime("scoring", settings)
    windows = Windows(settings.hot_within_days, settings.warm_within_days)
    runtime.consume("scoring", [topics.LEAD_EVENTS], event_handlers(windows))
    return create_service_app(runtime, "Leadflow scoring", [router])
