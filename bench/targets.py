"""What each figure of `make bench` must reach; a miss makes `make bench` exit non-zero, naming
the figure, so a regression is seen the day it happens. Ratios against a bare baseline are
printed for reference only: they say how noisy the machine was, not whether we regressed."""

import operator
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Target:
    name: str
    value: Callable[[dict[str, Any]], float | None]
    compare: Callable[[float, float], bool]
    bound: float
    unit: str

    def describe(self) -> str:
        sign = {operator.ge: "≥", operator.le: "≤", operator.lt: "<"}[self.compare]
        return f"{self.name} {sign} {self.bound:g} {self.unit}"


def _paced(figures: dict[str, Any], rate: int, key: str) -> float | None:
    runs = figures["pipeline"]["webhook_latency_paced"]
    return next((run[key] for run in runs if round(run["leads_per_s"]) == rate), None)


TARGETS = [
    Target("ingest / peer leads/s", lambda f: f["ingest"]["ratio_ingest_to_peer"], operator.ge, 5, "x"),
    Target(
        "ingest and peer: every lead answered 202",
        lambda f: sum(
            f["ingest"]["leads"] - f["ingest"][side].get(202, 0)
            for side in ("ingest_statuses", "peer_statuses")
        ),
        operator.le,
        0,
        "other answers",
    ),
    Target(
        "ingest p99 below the peer's",
        lambda f: f["ingest"]["peer_p99_ms"] - f["ingest"]["ingest_p99_ms"],
        operator.ge,
        0,
        "ms",
    ),
    Target("scoring replay", lambda f: f["scoring"]["scoring_events_per_s"], operator.ge, 5000, "events/s"),
    Target("timeframe read p99", lambda f: f["scoring"]["timeframe_parse"]["p99_ms"], operator.le, 10, "ms"),
    Target(
        "nurture hot webhook p99 at 100/s",
        lambda f: f["nurture"]["webhook_latency_at_100_per_s"]["p99_ms"],
        operator.le,
        100,
        "ms",
    ),
    Target(
        "nurture SMS touches",
        lambda f: f["nurture"]["scheduler_touches_per_s"],
        operator.ge,
        500,
        "touches/s",
    ),
    Target("metrics fold", lambda f: f["metrics"]["metrics_events_per_s"], operator.ge, 5000, "events/s"),
    Target("funnel over 1,000,000 leads", lambda f: f["metrics"]["funnel_ms"], operator.le, 200, "ms"),
    Target(
        "metrics RSS after a backlog / at rest",
        lambda f: f["backlog"]["after_to_rest"],
        operator.le,
        1.1,
        "x",
    ),
    Target("pipeline hot lead p50 at 100/s", lambda f: _paced(f, 100, "p50_ms"), operator.le, 30, "ms"),
    Target("pipeline hot lead p99 at 100/s", lambda f: _paced(f, 100, "p99_ms"), operator.le, 100, "ms"),
    Target("pipeline hot lead p99 at 300/s", lambda f: _paced(f, 300, "p99_ms"), operator.le, 250, "ms"),
    Target(
        "pipeline hot lead p99 in the burst",
        lambda f: f["pipeline"]["webhook_latency_saturated"]["p99_ms"],
        operator.le,
        1000,
        "ms",
    ),
    Target(
        "pipeline every hot lead delivered in the burst",
        lambda f: (
            f["pipeline"]["webhook_latency_saturated"]["hot_leads"]
            - f["pipeline"]["webhook_latency_saturated"]["webhooks_received"]
        ),
        operator.le,
        0,
        "missing",
    ),
]


TARGETS.append(
    Target("idle stack CPU", lambda f: f["idle"]["percent_of_a_core"], operator.lt, 5, "% of a core")
)


def judge(figures: dict[str, Any]) -> tuple[list[str], list[str]]:
    """(lines for every target, the ones missed)."""
    lines, missed = [], []
    for target in TARGETS:
        try:
            value = target.value(figures)
        except (KeyError, TypeError):
            value = None
        if value is None:
            verdict = "MISSED (not measured)"
        elif target.compare(value, target.bound):
            verdict = "ok"
        else:
            verdict = "MISSED"
        line = f"  {verdict:<22} {target.describe():<45} measured {value if value is not None else '-'}"
        lines.append(line)
        if verdict != "ok":
            missed.append(line.strip())
    return lines, missed
