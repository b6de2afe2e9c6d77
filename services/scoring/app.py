"""The scoring FastAPI app; its lifespan runs the lead-events consumer, the outbox relay and
the decay pass."""

from datetime import UTC, datetime

from fastapi import FastAPI

from services.scoring import passes, timeframe_dates
from services.scoring.api import router
from services.scoring.config import ScoringSettings
from services.scoring.handlers import event_handlers
from services.scoring.rulebook import RuleBook
from shared import topics
from shared.lead_keys import key_ring_box
from shared.service import ServiceRuntime
from shared.service_app import create_service_app

# A consumer batch of up to 2,000 events keeps its events, their leads' profiles and the rows and
# messages it writes alive while it is applied, nearly none of them garbage: at the services'
# 50,000 the collector ran about 100 times in the replay of `make bench`, 0.4-0.7 s of its 10-14 s
# of CPU, and found a few hundred objects to free. At 400,000 it took 0.01 s.
GC_FIRST_GENERATION = 400_000


def create_app(settings: ScoringSettings) -> FastAPI:
    runtime = ServiceRuntime("scoring", settings, gc_first_generation=GC_FIRST_GENERATION)
    timeframe_dates.warm_up()  # once per process: the first lead must not wait for dateparser's data
    initial = settings.rules_file.read_text(encoding="utf-8") if settings.rules_file else None
    book = RuleBook(initial)
    handlers = event_handlers(book, runtime.telemetry, key_ring_box(settings.admin_token_value))
    # a new lead's capture is rung by ingest's commit: classified before the broker has it.
    # A lead's rows are its own: a batch's partitions are decided in two transactions at once,
    # one deciding while the other waits for the database.
    runtime.consume(
        "scoring",
        [topics.LEAD_EVENTS],
        handlers,
        personal=True,
        urgent=True,
        rung_by=topics.NEW_LEADS_BELL,
        parallel_partitions=2,
    )
    runtime.add_periodic(
        "score review",
        settings.review_every_seconds,
        lambda: passes.review_due(runtime.db, book, datetime.now(UTC)),
    )
    runtime.at_start(lambda: book.follow_release_at_start(runtime.db), "following the built-in rules")
    runtime.at_start(lambda: passes.resume_rescores(runtime.db, book), "resuming rescores")
    app = create_service_app(runtime, "Leadflow scoring", [router])
    app.state.rulebook = book
    return app
