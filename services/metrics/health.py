"""Pipeline health in one call: consumer lag per group and topic and DLQ sizes (asked of the
broker), each service's outbox backlog and dead letters and each consumer's inbox dead letters
(`health_figures`), nurture's webhook failures and the hot
leads it could tell nobody of (asked of each service over HTTP, with the viewer token: no
service reads another's schema, so each can run under its own database role), and end-to-end
latency (capture → rep webhook delivered, from the read model). Each figure is also a Prometheus gauge on
this service's /metrics (`health_gauges`); the broker's are read by `broker_figures`. A report
is reused for a few seconds, and callers meanwhile share the one being made: the dashboard
polls it."""

import asyncio
import logging
import time
from typing import Any

import httpx
from sqlalchemy import text

from services.metrics.broker_figures import GROUPS, broker_figures
from services.metrics.config import MetricsSettings
from services.metrics.health_figures import Answer, OwnFigures, inbox_figures, outbox_figures
from services.metrics.health_gauges import HealthGauges
from shared.db import Database
from shared.observability import Telemetry

log = logging.getLogger(__name__)
ASK_TIMEOUT = 2.0
DATABASE_TIMEOUT = 5.0
_OWN_FIGURES = (
    "SELECT (SELECT count(*) FROM outbox), (SELECT count(*) FROM outbox_dead_letters),"
    " (SELECT count(*) FROM inbox_dead_letters)"
)
_LATENCY = """
SELECT percentile_cont(0.5) WITHIN GROUP (ORDER BY s) AS p50,
       percentile_cont(0.99) WITHIN GROUP (ORDER BY s) AS p99
FROM (SELECT extract(epoch FROM delivered_at - live_captured_at) AS s FROM lead_facts
      WHERE delivered_at IS NOT NULL AND live_captured_at > now() - interval '1 day') recent
"""


class PipelineHealth:
    def __init__(self, db: Database, settings: MetricsSettings, telemetry: Telemetry) -> None:
        self.db, self.bootstrap, self.settings = db, settings.kafka_bootstrap, settings
        token = settings.viewer_token_value or settings.admin_token_value
        self._auth = {"Authorization": f"Bearer {token}"}
        self._report: tuple[float, dict[str, Any]] | None = None
        self._making: asyncio.Task[dict[str, Any]] | None = None
        self.gauges = HealthGauges(telemetry.registry)

    async def check(self) -> dict[str, Any]:
        """A report at most `health_cache_seconds` old; callers at the same time share one."""
        fresh_for = self.settings.health_cache_seconds
        if self._report is not None and time.monotonic() - self._report[0] < fresh_for:
            return self._report[1]
        if self._making is None or self._making.done():
            self._making = asyncio.ensure_future(self._make())
        report = await asyncio.shield(self._making)
        self._report = (time.monotonic(), report)
        return report

    async def _make(self) -> dict[str, Any]:
        report: dict[str, Any] = {
            "consumer_lag": {},
            "dlq": {},
            "outbox_backlog": {},
            "outbox_dead_letters": {},
            "inbox_dead_letters": {},
            "problems": [],
        }
        try:
            report["consumer_lag"], report["dlq"] = await broker_figures(
                self.bootstrap, report["problems"], self.settings.kafka_security
            )
        except Exception as error:
            report["problems"].append(f"broker: {type(error).__name__}")
        await self._service_figures(report)
        unread = report["outbox_backlog"]["metrics"] is None  # its database did not answer
        latency = None if unread else await self._latency(report["problems"])
        report["capture_to_webhook_seconds"] = latency or {"p50": None, "p99": None}
        self.gauges.export(report)
        return report

    async def _service_figures(self, report: dict[str, Any]) -> None:
        """Each service's outbox and each consumer's inbox (asked of them at once with nurture's
        webhooks; metrics' own from its schema)."""
        problems, peers = report["problems"], self.settings.peers
        consumers = {service: url for service, url in peers.items() if service in GROUPS}
        async with httpx.AsyncClient(timeout=ASK_TIMEOUT, headers=self._auth) as client:
            outboxes, inboxes, report["webhooks_last_hour"] = await asyncio.gather(
                self._ask_each(client, peers, "/v1/outbox"),
                self._ask_each(client, consumers, "/v1/inbox"),
                self._webhooks(client, problems),
            )
        own = await self._own_figures(problems)
        report["outbox_backlog"], report["outbox_dead_letters"] = outbox_figures(outboxes, own, problems)
        report["inbox_dead_letters"] = inbox_figures(inboxes, outboxes, own, problems)

    async def _ask_each(
        self, client: httpx.AsyncClient, services: dict[str, str], path: str
    ) -> dict[str, Answer]:
        answers = await asyncio.gather(*(self._ask(client, url, path) for url in services.values()))
        return dict(zip(services, answers, strict=True))

    async def _own_figures(self, problems: list[str]) -> OwnFigures:
        """Metrics' own figures; its database down (or silent) is a problem line, not a 503 for
        the whole report: the broker's and the other services' figures are still worth reading."""
        try:
            async with asyncio.timeout(DATABASE_TIMEOUT), self.db.transaction() as session:
                backlog, dead, inbox_dead = (await session.execute(text(_OWN_FIGURES))).one()
        except Exception as error:
            problems.append(f"metrics: database: {type(error).__name__}")
            return OwnFigures()
        return OwnFigures(backlog, dead, inbox_dead)

    async def _webhooks(self, client: httpx.AsyncClient, problems: list[str]) -> dict[str, Any]:
        """Nurture's webhook failures; and a problem line for the hot leads nobody was told of."""
        answer = await self._ask(client, self.settings.nurture_url, "/v1/delivery-health")
        if isinstance(answer, str):  # the outbox's problem line says so
            return {"attempts": None, "failed": None, "failure_ratio": None}
        if nobody := answer.get("leads_told_nobody"):  # (a nurture from before it says nothing)
            problems.append(
                f"nurture: {nobody} hot or SQL leads in the last day reached nobody: no active rep"
                " matches them and no manager is active (add a rep who covers them, or a manager)"
            )
        if unopened := answer.get("unopened_secrets"):  # the cause of nurture's dead letters, named
            problems.append(
                f"nurture: stored secrets do not open with this LEADFLOW_SECRET_KEY: {unopened} reps'"
                " and subscriptions' signing secrets, so hot leads to them go to the dead letters"
                " (give nurture the key that sealed them: .leadflow/secret.key under `make run`, else"
                " LEADFLOW_SECRET_KEY; or rotate their secrets)"
            )
        return {k: answer[k] for k in ("attempts", "failed", "failure_ratio")}

    async def _ask(self, client: httpx.AsyncClient, base: str, path: str) -> dict[str, Any] | str:
        """The service's figures, or why there are none: a service that answered 503 (its
        database down) was reported as "no answer", as if it were not running."""
        url = base.rstrip("/") + path
        try:
            answer = await client.get(url)
        except httpx.HTTPError as error:
            log.info("health: %s did not answer: %r", url, error)
            return f"no answer from {base}"
        try:
            answer.raise_for_status()
            return dict(answer.json())
        except (httpx.HTTPError, ValueError) as error:
            log.info("health: %s answered %r", url, error)
            return f"GET {url} answered {answer.status_code}"

    async def _latency(self, problems: list[str]) -> dict[str, float | None] | None:
        """Capture → webhook over the last day; None, and a problem line, when the database
        stopped answering since the outbox was read (the report, and its gauges, still come)."""
        try:
            async with asyncio.timeout(DATABASE_TIMEOUT), self.db.transaction() as session:
                row = (await session.execute(text(_LATENCY))).one()
        except Exception as error:
            problems.append(f"metrics: database: {type(error).__name__}")
            return None
        return {"p50": _round(row.p50), "p99": _round(row.p99)}


def _round(value: Any) -> float | None:
    return round(float(value), 3) if value is not None else None
