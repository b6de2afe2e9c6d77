"""The ingest FastAPI app; its lifespan runs the outbox relay."""

from fastapi import FastAPI

from services.ingest.api import router
from services.ingest.config import IngestSettings
from shared.service import ServiceRuntime, create_service_app


def create_app(settings: IngestSettings) -> FastAPI:
    runtime = ServiceRuntime("ingest", settings)
    return create_service_app(runtime, "Leadflow ingest", [router])
