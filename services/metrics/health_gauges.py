"""The pipeline health report as Prometheus gauges on metrics' /metrics: a gauge per figure, and
the count of the report's problems to alert on."""

from typing import Any

from prometheus_client import CollectorRegistry, Gauge


class HealthGauges:
    """The health report's gauges in `registry`, set from each report made."""

    def __init__(self, registry: CollectorRegistry) -> None:
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
        self.inbox_dead_letters = Gauge(
            "leadflow_pipeline_inbox_dead_letters",
            "Messages a consumer could not apply, kept to be replayed, by service.",
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

    def export(self, report: dict[str, Any]) -> None:
        """Set each gauge from the report; one whose figure could not be read keeps its value."""
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
        for service, dead in report["inbox_dead_letters"].items():
            if dead is not None:
                self.inbox_dead_letters.labels(service).set(dead)
        ratio = report["webhooks_last_hour"]["failure_ratio"]
        if ratio is not None:
            self.webhook_failures.set(ratio)
        for quantile, value in report["capture_to_webhook_seconds"].items():
            if value is not None:
                self.latency.labels(quantile).set(value)
