"""The nurture FastAPI app; its lifespan runs the classifications consumer, the webhook
dispatcher and the outbox relay."""

from fastapi import FastAPI

from services.nurture import sla
from services.nurture.api import routers
from services.nurture.config import NurtureSettings
from services.nurture.handlers import event_handlers
from services.nurture.webhooks import WebhookDispatcher
from shared import topics
from shared.service import ServiceRuntime, create_service_app


def create_app(settings: NurtureSettings) -> FastAPI:
    runtime = ServiceRuntime("nurture", settings)
    runtime.consume("nurture", [topics.LEAD_CLASSIFICATIONS], event_handlers(settings))
    every = settings.sla_check_every_seconds
    runtime.add_periodic("SLA check", every, lambda: sla.escalate_overdue(runtime.db, settings))
    dispatcher = WebhookDispatcher(runtime.db.direct_connection(), settings)
    runtime.db.after_commit("webhook_deliveries", dispatcher.wake)
    runtime.add_loop(dispatcher.run)
    app = create_service_app(runtime, "Leadflow nurture", routers)
    app.state.dispatcher = dispatcher
    return app
