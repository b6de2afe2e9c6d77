"""The ingest FastAPI app; its lifespan runs the outbox relay."""

from fastapi import FastAPI

from services.ingest.api import router
from services.ingest.config import IngestSettings
from services.ingest.source_cache import SourceCache
from shared.group_commit import GroupCommitter
from shared.service import ServiceRuntime, create_service_app


def create_app(settings: IngestSettings) -> FastAPI:
    # Ingest keeps taking leads while the broker is away (the outbox holds them), so a
    # broker outage is reported by /readyz but does not take ingest out of service.
    runtime = ServiceRuntime("ingest", settings, needs_broker=False)
    committer = GroupCommitter(runtime.db)
    runtime.add_loop(committer.run)
    app = create_service_app(runtime, "Leadflow ingest", [router])
    app.state.committer = committer
    app.state.sources = SourceCache(runtime.db)
    return app
