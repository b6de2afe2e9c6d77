"""Pipeline health in one call: consumer lag per group and topic and DLQ sizes (asked of the
broker), outbox backlogs and webhook failure rates (read from the services' schemas when they
share this database), and end-to-end latency (capture → rep webhook, from the read model).
Each figure is also a Prometheus gauge on this service's /metrics."""

import logging
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition
from prometheus_client import Gauge
from sqlalchemy import text

from shared import topics
from shared.db import Database
from shared.observability import Telemetry

log = logging.getLogger(__name__)
GROUPS = {
    "scoring": [topics.LEAD_EVENTS],
    "nurture": [topics.LEAD_CLASSIFICATIONS, topics.LEAD_EVENTS],
    "metrics": list(topics.DOMAIN_TOPICS),
}
SCHEMAS = ("ingest", "scoring", "nurture", "metrics")
_LATENCY = """
SELECT percentile_cont(0.5) WITHIN GROUP (ORDER BY s) AS p50,
       percentile_cont(0.99) WITHIN GROUP (ORDER BY s) AS p99
FROM (SELECT extract(epoch FROM assigned_at - captured_at) AS s FROM lead_facts
      WHERE assigned_at IS NOT NULL AND captured_at > now() - interval '1 day') recent
"""
_WEBHOOKS = """
SELECT count(*) FILTER (WHERE status_code IS NULL OR status_code >= 300) AS failed, count(*) AS attempts
FROM nurture.delivery_attempts WHERE attempted_at > now() - interval '1 hour'
"""


class PipelineHealth:
    def __init__(self, db: Database, bootstrap: str, telemetry: Telemetry) -> None:
        self.db, self.bootstrap = db, bootstrap
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
        self.latency = Gauge(
            "leadflow_pipeline_capture_to_webhook_seconds",
            "Capture → rep webhook over the last day.",
            ["quantile"],
            registry=registry,
        )

    async def check(self) -> dict[str, Any]:
        report: dict[str, Any] = {
            "consumer_lag": {},
            "dlq": {},
            "outbox_backlog": {},
            "outbox_dead_letters": {},
            "problems": [],
        }
        try:
            report["consumer_lag"], report["dlq"] = await self._broker()
        except Exception as error:
            report["problems"].append(f"broker: {type(error).__name__}")
        report["outbox_backlog"], report["outbox_dead_letters"] = await self._outboxes(report["problems"])
        report["webhooks_last_hour"] = await self._webhooks(report["problems"])
        report["capture_to_webhook_seconds"] = await self._latency()
        self._export(report)
        return report

    async def _broker(self) -> tuple[dict[str, dict[str, int]], dict[str, int]]:
        wanted = {*{t for ts in GROUPS.values() for t in ts}, *(topics.dlq(g) for g in GROUPS)}
        partitions = [TopicPartition(t, p) for t in wanted for p in range(topics.PARTITIONS)]
        reader = AIOKafkaConsumer(bootstrap_servers=self.bootstrap, client_id="leadflow-metrics-health")
        await reader.start()
        try:
            ends = await reader.end_offsets(partitions)
        finally:
            await reader.stop()
        lags = {
            group: await self._group_lag(group, group_topics, ends) for group, group_topics in GROUPS.items()
        }
        dlq = {
            g: sum(ends.get(TopicPartition(topics.dlq(g), p), 0) for p in range(topics.PARTITIONS))
            for g in GROUPS
        }
        return lags, dlq

    async def _group_lag(
        self, group: str, group_topics: list[str], ends: dict[TopicPartition, int]
    ) -> dict[str, int]:
        """What the group has committed, read without joining it (no rebalance is caused)."""
        member = AIOKafkaConsumer(
            bootstrap_servers=self.bootstrap,
            group_id=group,
            enable_auto_commit=False,
            client_id="leadflow-metrics-health",
        )
        await member.start()
        try:
            lag = {}
            for topic in group_topics:
                behind = 0
                for partition in range(topics.PARTITIONS):
                    tp = TopicPartition(topic, partition)
                    done = await member.committed(tp) or 0
                    behind += max(ends.get(tp, 0) - done, 0)
                lag[topic] = behind
            return lag
        finally:
            await member.stop()

    async def _outboxes(self, problems: list[str]) -> tuple[dict[str, int | None], dict[str, int | None]]:
        """Each service's unpublished outbox rows, and the rows its relay set aside."""
        backlog: dict[str, int | None] = {}
        dead: dict[str, int | None] = {}
        for schema in SCHEMAS:
            query = text(
                f"SELECT (SELECT count(*) FROM {schema}.outbox), "  # noqa: S608 - a fixed schema name
                f"(SELECT count(*) FROM {schema}.outbox_dead_letters)"
            )
            try:
                async with self.db.transaction() as session:
                    backlog[schema], dead[schema] = (await session.execute(query)).one()
            except Exception:
                backlog[schema] = dead[schema] = None  # that service keeps its data elsewhere
        if any(v is None for v in backlog.values()):
            problems.append("some outboxes are not in this database")
        for schema, count in dead.items():
            if count:
                problems.append(f"{schema}: {count} events the broker refused (GET /v1/outbox/dead-letters)")
        return backlog, dead

    async def _webhooks(self, problems: list[str]) -> dict[str, Any]:
        try:
            async with self.db.transaction() as session:
                row = (await session.execute(text(_WEBHOOKS))).one()
        except Exception:
            problems.append("nurture's deliveries are not in this database")
            return {"attempts": None, "failed": None, "failure_ratio": None}
        ratio = round(row.failed / row.attempts, 4) if row.attempts else 0.0
        return {"attempts": row.attempts, "failed": row.failed, "failure_ratio": ratio}

    async def _latency(self) -> dict[str, float | None]:
        async with self.db.transaction() as session:
            row = (await session.execute(text(_LATENCY))).one()
        return {"p50": _round(row.p50), "p99": _round(row.p99)}

    def _export(self, report: dict[str, Any]) -> None:
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
