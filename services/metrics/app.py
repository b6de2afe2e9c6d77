"""The metrics FastAPI app; its lifespan runs the consumer of every domain topic."""

from fastapi import FastAPI

from services.metrics.api import router
from services.metrics.config import MetricsSettings
from services.metrics.handlers import event_handlers
from shared import topics
from shared.service import ServiceRuntime, create_service_app


def create_app(settings: MetricsSettings) -> FastAPI:
    runtime = ServiceRuntime("metrics", settings)
    runtime.consume("metrics", topics.DOMAIN_TOPICS, event_handlers())
    return create_service_app(runtime, "Leadflow metrics", [router])
