"""Pipeline health in one call: consumer lag per group and topic and DLQ sizes (asked of the
broker), each service's outbox backlog and dead letters and nurture's webhook failures (asked of
each service over HTTP, with the viewer token: no service reads another's schema, so each can
run under its own database role), and end-to-end latency (capture → rep webhook, from the read
model). Each figure is also a Prometheus gauge on this service's /metrics. A report is reused
for a few seconds, and callers meanwhile share the one being made: the dashboard polls it."""

import asyncio
import logging
import time
from typing import Any

import httpx
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.structs import OffsetAndMetadata
from prometheus_client import Gauge
from sqlalchemy import text

from services.metrics.config import MetricsSettings
from shared import topics
from shared.db import Database
from shared.observability import Telemetry

log = logging.getLogger(__name__)
GROUPS = {
    "scoring": [topics.LEAD_EVENTS],
    "nurture": [topics.LEAD_CLASSIFICATIONS, topics.LEAD_EVENTS],
    "metrics": list(topics.DOMAIN_TOPICS),
}
ASK_TIMEOUT = 2.0
BROKER_TIMEOUT = 5.0
DATABASE_TIMEOUT = 5.0
_OWN_OUTBOX = "SELECT (SELECT count(*) FROM outbox), (SELECT count(*) FROM outbox_dead_letters)"
_LATENCY = """
SELECT percentile_cont(0.5) WITHIN GROUP (ORDER BY s) AS p50,
       percentile_cont(0.99) WITHIN GROUP (ORDER BY s) AS p99
FROM (SELECT extract(epoch FROM assigned_at - captured_at) AS s FROM lead_facts
      WHERE assigned_at IS NOT NULL AND captured_at > now() - interval '1 day') recent
"""


class PipelineHealth:
    def __init__(self, db: Database, settings: MetricsSettings, telemetry: Telemetry) -> None:
        self.db, self.bootstrap, self.settings = db, settings.kafka_bootstrap, settings
        token = settings.viewer_token_value or settings.admin_token_value
        self._auth = {"Authorization": f"Bearer {token}"}
        self._report: tuple[float, dict[str, Any]] | None = None
        self._making: asyncio.Task[dict[str, Any]] | None = None
        registry = telemetry.registry
        self.lag = Gauge(
            "leadflow_pipeline_consumer_lag",
            "Messages not yet committed, by group and topic.",
            ["group", "topic"],
            registry=registry,
        )
        self.dlq = Gauge(
            "leadflow_pipeline_dlq_messages",
            "Messages in each dead-letter topic.",
            ["group"],
            registry=registry,
        )
        self.outbox = Gauge(
            "leadflow_pipeline_outbox_backlog",
            "Unpublished outbox rows, by service.",
            ["service"],
            registry=registry,
        )
        self.dead_letters = Gauge(
            "leadflow_pipeline_outbox_dead_letters",
            "Outbox rows the broker refused, set aside, by service.",
            ["service"],
            registry=registry,
        )
        self.webhook_failures = Gauge(
            "leadflow_pipeline_webhook_failure_ratio",
            "Failed webhook attempts ÷ attempts in the last hour.",
            registry=registry,
        )
        # The other gauges keep their last value while what they come from cannot be read (a lag
        # of 0 from before the broker went): alert on this one.
        self.problems = Gauge(
            "leadflow_pipeline_problems",
            "Lines in the last health report's problems: what could not be read, or needs an admin.",
            registry=registry,
        )
        self.latency = Gauge(
            "leadflow_pipeline_capture_to_webhook_seconds",
            "Capture → rep webhook over the last day.",
            ["quantile"],
            registry=registry,
        )

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
            "problems": [],
        }
        try:
            report["consumer_lag"], report["dlq"] = await self._broker(report["problems"])
        except Exception as error:
            report["problems"].append(f"broker: {type(error).__name__}")
        async with httpx.AsyncClient(timeout=ASK_TIMEOUT, headers=self._auth) as client:
            outboxes, webhooks = await asyncio.gather(
                self._outboxes(client, report["problems"]), self._webhooks(client, report["problems"])
            )
        report["outbox_backlog"], report["outbox_dead_letters"] = outboxes
        report["webhooks_last_hour"] = webhooks
        unread = report["outbox_backlog"]["metrics"] is None  # its database did not answer
        latency = None if unread else await self._latency(report["problems"])
        report["capture_to_webhook_seconds"] = latency or {"p50": None, "p99": None}
        self._export(report)
        return report

    async def _broker(self, problems: list[str]) -> tuple[dict[str, dict[str, int]], dict[str, int]]:
        """Each group's lag and each dead-letter topic's size: one ListOffsets for the log
        ends of the partitions the broker has (a topic missing is a problem line: asked for,
        it would be waited for), one OffsetFetch per group (read without joining it: no
        rebalance is caused), bounded by BROKER_TIMEOUT so a slow broker makes a problem line,
        not a slow answer."""
        wanted = {*{t for ts in GROUPS.values() for t in ts}, *(topics.dlq(g) for g in GROUPS)}
        reader = AIOKafkaConsumer(bootstrap_servers=self.bootstrap, client_id="leadflow-metrics-health")
        admin = AIOKafkaAdminClient(bootstrap_servers=self.bootstrap, client_id="leadflow-metrics-health")
        try:
            async with asyncio.timeout(BROKER_TIMEOUT):
                await reader.start()
                await admin.start()
                present = await reader.topics()
                problems.extend(f"broker: topic {name} missing" for name in sorted(wanted - present))
                partitions = [
                    TopicPartition(name, p)
                    for name in sorted(wanted & present)
                    for p in sorted(reader.partitions_for_topic(name) or ())
                ]
                ends = await reader.end_offsets(partitions)
                committed = {  # partitions named: Tansu cannot answer "all of the group's"
                    group: await admin.list_consumer_group_offsets(
                        group, partitions=_partitions(group_topics)
                    )
                    for group, group_topics in GROUPS.items()
                }
        finally:
            await reader.stop()
            await admin.close()
        lags = {group: _lag(group_topics, ends, committed[group]) for group, group_topics in GROUPS.items()}
        dlq = {
            g: sum(ends.get(TopicPartition(topics.dlq(g), p), 0) for p in range(topics.PARTITIONS))
            for g in GROUPS
        }
        return lags, dlq

    async def _outboxes(
        self, client: httpx.AsyncClient, problems: list[str]
    ) -> tuple[dict[str, int | None], dict[str, int | None]]:
        """Each service's unpublished outbox rows, and the rows its relay set aside: metrics'
        own from its schema, the others' asked of them."""
        peers = self.settings.peers
        answers = await asyncio.gather(*(self._ask(client, url, "/v1/outbox") for url in peers.values()))
        backlog: dict[str, int | None] = {}
        dead: dict[str, int | None] = {}
        for service, answer in zip(peers, answers, strict=True):
            if isinstance(answer, str):
                backlog[service] = dead[service] = None
                problems.append(f"{service}: {answer}")
            else:
                backlog[service], dead[service] = answer["backlog"], answer["dead_letters"]
        backlog["metrics"], dead["metrics"] = await self._own_outbox(problems)
        for service, count in dead.items():
            if count:
                problems.append(f"{service}: {count} events the broker refused (GET /v1/outbox/dead-letters)")
        return backlog, dead

    async def _own_outbox(self, problems: list[str]) -> tuple[int | None, int | None]:
        """Metrics' own figures; its database down (or silent) is a problem line, not a 503 for
        the whole report: the broker's and the other services' figures are still worth reading."""
        try:
            async with asyncio.timeout(DATABASE_TIMEOUT), self.db.transaction() as session:
                backlog, dead = (await session.execute(text(_OWN_OUTBOX))).one()
        except Exception as error:
            problems.append(f"metrics: database: {type(error).__name__}")
            return None, None
        return backlog, dead

    async def _webhooks(self, client: httpx.AsyncClient, problems: list[str]) -> dict[str, Any]:
        answer = await self._ask(client, self.settings.nurture_url, "/v1/delivery-health")
        if isinstance(answer, str):  # the outbox's problem line says so
            return {"attempts": None, "failed": None, "failure_ratio": None}
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

    def _export(self, report: dict[str, Any]) -> None:
        self.problems.set(len(report["problems"]))
        for group, per_topic in report["consumer_lag"].items():
            for topic, lag in per_topic.items():
                self.lag.labels(group, topic).set(lag)
        for group, count in report["dlq"].items():
            self.dlq.labels(group).set(count)
        for service, backlog in report["outbox_backlog"].items():
            if backlog is not None:
                self.outbox.labels(service).set(backlog)
        for service, dead in report["outbox_dead_letters"].items():
            if dead is not None:
                self.dead_letters.labels(service).set(dead)
        ratio = report["webhooks_last_hour"]["failure_ratio"]
        if ratio is not None:
            self.webhook_failures.set(ratio)
        for quantile, value in report["capture_to_webhook_seconds"].items():
            if value is not None:
                self.latency.labels(quantile).set(value)


def _round(value: Any) -> float | None:
    return round(float(value), 3) if value is not None else None


def _partitions(names: list[str]) -> list[TopicPartition]:
    return [TopicPartition(t, p) for t in names for p in range(topics.PARTITIONS)]


def _lag(
    group_topics: list[str],
    ends: dict[TopicPartition, int],
    committed: dict[TopicPartition, OffsetAndMetadata],
) -> dict[str, int]:
    """Messages behind per topic: the log end less what the group committed (nothing: all)."""
    lag = {}
    for topic in group_topics:
        behind = 0
        for partition in range(topics.PARTITIONS):
            tp = TopicPartition(topic, partition)
            done = committed[tp].offset if tp in committed and committed[tp].offset >= 0 else 0
            behind += max(ends.get(tp, 0) - done, 0)
        lag[topic] = behind
    return lag
