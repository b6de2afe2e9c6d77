"""The nurture FastAPI app; its lifespan runs the classifications consumer, the webhook
dispatcher and the outbox relay."""

from fastapi import FastAPI

from services.nurture import sla
from services.nurture.api import routers
from services.nurture.config import NurtureSettings
from services.nurture.followup import PlaybookBook
from services.nurture.handlers import event_handlers, hand_off_lane
from services.nurture.sender import TouchSender
from services.nurture.webhooks import WebhookDispatcher
from shared import topics
from shared.events import LEAD_CAPTURED, utcnow
from shared.service import ServiceRuntime, create_service_app


def create_app(settings: NurtureSettings) -> FastAPI:
    runtime = ServiceRuntime("nurture", settings)
    book = PlaybookBook()
    runtime.consume(
        "nurture",
        [topics.LEAD_CLASSIFICATIONS, topics.LEAD_EVENTS],
        event_handlers(settings, book),
        personal=True,
        lane=hand_off_lane(settings),
        warm_keys_on=[LEAD_CAPTURED],  # the hand-off then finds a hot lead's key at hand
    )
    sender = TouchSender(runtime.db, book, settings)
    if settings.touches_enabled:
        runtime.add_loop(sender.run)
    every = settings.sla_check_every_seconds
    runtime.add_periodic("SLA check", every, lambda: sla.escalate_overdue(runtime.db, settings, utcnow()))
    dispatcher = WebhookDispatcher(runtime.db.direct_connection(), runtime.db.direct_connection(), settings)
    runtime.db.after_commit("webhook_deliveries", dispatcher.wake)
    runtime.add_loop(dispatcher.run)
    app = create_service_app(runtime, "Leadflow nurture", routers)
    app.state.playbooks = book
    app.state.sender = sender
    return app
