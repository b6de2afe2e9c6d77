"""The nurture FastAPI app; its lifespan runs the classifications consumer, the webhook
dispatcher and the outbox relay. The hand-off app runs only what a hot lead's way to its rep
needs (the lane, the dispatcher, the relay), for a process of its own."""

import asyncio
import logging

from fastapi import FastAPI, Request, Response

from services.nurture import delivery_log, directory, resealing, sla, unsubscribe_routes
from services.nurture.api import routers
from services.nurture.config import NurtureSettings
from services.nurture.countries import country_of
from services.nurture.followup import PlaybookBook
from services.nurture.greetings import greet_occasions
from services.nurture.handlers import event_handlers, hand_off_lane
from services.nurture.paused_receivers import RECEIVERS_BELL, keep_paused_receivers
from services.nurture.proposal_reminders import remind_stale
from services.nurture.sender import TouchSender
from services.nurture.subscriptions import ENDPOINTS_BELL, keep_subscribers
from services.nurture.webhooks import WebhookDispatcher
from shared import topics
from shared.doorbell import answer, ring_in
from shared.events import LEAD_CAPTURED, utcnow
from shared.http import problem
from shared.service import ServiceRuntime
from shared.service_app import create_service_app

log = logging.getLogger(__name__)
WEBHOOKS_BELL = "nurture.webhook-deliveries"  # rung by nurture's commits that made deliveries


def create_app(settings: NurtureSettings) -> FastAPI:
    if warning := settings.unreachable_links:
        log.warning(warning)
    runtime = ServiceRuntime("nurture", settings)
    book = PlaybookBook()
    runtime.consume(
        "nurture",
        [topics.LEAD_CLASSIFICATIONS, topics.LEAD_EVENTS],
        event_handlers(settings, book),
        personal=True,
        lane=None if settings.hand_off_apart else hand_off_lane(settings),
        # the lane here then finds a hot lead's key at hand
        warm_keys_on=[] if settings.hand_off_apart else [LEAD_CAPTURED],
    )
    _keep_subscribers(runtime)
    sender = TouchSender(runtime.db, book, settings)
    if settings.touches_enabled:
        runtime.add_loop(sender.run)
    runtime.at_start(_read_countries, "reading the names of countries")
    runtime.at_start(lambda: _reseal(runtime, settings), "sealing secrets again")
    runtime.at_start(lambda: book.follow_release_at_start(runtime.db), "following the built-in playbooks")
    every = settings.sla_check_every_seconds
    runtime.add_periodic("SLA check", every, lambda: sla.escalate_overdue(runtime.db, settings, utcnow()))
    every_check = settings.proposal_check_every_seconds
    runtime.add_periodic("proposal check", every_check, lambda: remind_stale(runtime.db, utcnow()))
    every_greet = settings.occasion_check_every_seconds
    runtime.add_periodic(
        "occasion greetings", every_greet, lambda: greet_occasions(runtime.db, book, utcnow())
    )
    if settings.hand_off_apart:
        # The hand-off process dispatches every webhook: one claimed here would wait for this
        # process, which yields the CPU to the hand-off path, and a rep's would be late.
        runtime.db.before_commit("webhook_deliveries", lambda session: ring_in(session, [WEBHOOKS_BELL]))
    else:
        _dispatch_webhooks(runtime, settings)
    notices = {"secrets": resealing.signing_secrets_check(runtime.db, settings.box)}
    app = create_service_app(runtime, "Leadflow nurture", routers, notices=notices)
    for missing in (directory.NotFound, delivery_log.NoSuchDelivery):
        app.add_exception_handler(missing, _not_found)
    app.add_exception_handler(unsubscribe_routes.InvalidLink, unsubscribe_routes.invalid_link_page)
    app.state.playbooks = book
    app.state.sender = sender
    return app


def create_hand_off_app(settings: NurtureSettings) -> FastAPI:
    """Hot and SQL leads to their reps: the lane, the relay and the webhook dispatcher, which
    sends nurture's other webhooks too (the lane's commits wake it here, the main process's
    ring the doorbell). HTTP serves health and metrics only."""
    runtime = ServiceRuntime("nurture", settings)
    runtime.consume_lane("nurture", hand_off_lane(settings), personal=True)
    _keep_subscribers(runtime)
    runtime.at_start(_read_countries, "reading the names of countries")
    dispatcher = _dispatch_webhooks(runtime, settings)
    bell = runtime.heard([WEBHOOKS_BELL])
    runtime.add_loop(lambda: answer(bell, dispatcher.wake))
    return create_service_app(runtime, "Leadflow nurture hand-off", [])


def _dispatch_webhooks(runtime: ServiceRuntime, settings: NurtureSettings) -> WebhookDispatcher:
    connections = runtime.db.direct_connection(), runtime.db.direct_connection()
    dispatcher = WebhookDispatcher(*connections, settings, wake_relay=runtime.relay.wake)
    runtime.db.after_commit("webhook_deliveries", dispatcher.wake)
    dispatcher.serve_at_birth(runtime.db)  # a rep's hot lead is sent as the lane commits it
    runtime.add_loop(dispatcher.run)
    return dispatcher


async def _read_countries() -> None:
    """Routing's table of countries' codes and names is built (about 0.2 s) before a hot lead
    has to wait for it."""
    await asyncio.to_thread(country_of, "KZ")


async def _reseal(runtime: ServiceRuntime, settings: NurtureSettings) -> None:
    await resealing.reseal_secrets(runtime.db, settings.box)


def _keep_subscribers(runtime: ServiceRuntime) -> None:
    """Announcing an event reads the subscribers kept in memory, not the table in each transaction;
    a hand-off, the paused receivers likewise."""
    runtime.add_loop(keep_subscribers(runtime.db, runtime.heard([ENDPOINTS_BELL])))
    runtime.add_loop(keep_paused_receivers(runtime.db, runtime.heard([RECEIVERS_BELL])))


async def _not_found(request: Request, error: Exception) -> Response:
    return problem(404, str(error))
