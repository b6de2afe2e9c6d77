"""`make bench` fails loudly on a missed figure, naming it."""

import copy
from typing import Any

from bench.targets import TARGETS, judge

MET: dict[str, Any] = {
    "idle": {"percent_of_a_core": 3.2},
    "ingest": {
        "leads": 10_000,
        "ingest_statuses": {202: 10_000},
        "peer_statuses": {202: 10_000},
        "ratio_ingest_to_peer": 6.1,
        "ingest_p99_ms": 80.0,
        "peer_p99_ms": 400.0,
    },
    "scoring": {"scoring_events_per_s": 5200.0, "timeframe_parse": {"p99_ms": 1.7}},
    "nurture": {"webhook_latency_at_100_per_s": {"p99_ms": 40.0}, "scheduler_touches_per_s": 900.0},
    "metrics": {"metrics_events_per_s": 6000.0, "funnel_ms": 120.0},
    "backlog": {"after_to_rest": 1.03},
    "pipeline": {
        "webhook_latency_paced": [
            {"leads_per_s": 20.0, "p50_ms": 20.0, "p99_ms": 60.0},
            {"leads_per_s": 100.0, "p50_ms": 25.0, "p99_ms": 90.0},
            {"leads_per_s": 300.0, "p50_ms": 40.0, "p99_ms": 200.0},
        ],
        "webhook_latency_saturated": {"p99_ms": 800.0, "hot_leads": 667, "webhooks_received": 667},
    },
}


def test_every_figure_met_is_no_miss() -> None:
    lines, missed = judge(MET)
    assert missed == [] and len(lines) == len(TARGETS)


def test_a_missed_or_unmeasured_figure_is_named() -> None:
    slow = copy.deepcopy(MET)
    slow["scoring"]["scoring_events_per_s"] = 1250.0
    slow["pipeline"]["webhook_latency_paced"] = slow["pipeline"]["webhook_latency_paced"][:1]
    _, missed = judge(slow)
    assert len(missed) == 4
    assert (
        missed[0].startswith("MISSED")
        and "scoring replay ≥ 5000 events/s" in missed[0]
        and "1250.0" in missed[0]
    )
    assert all("not measured" in line for line in missed[1:])
    assert ["at 100/s" in line for line in missed[1:]] == [True, True, False]
    assert "at 300/s" in missed[3]


def test_a_service_left_bigger_by_a_backlog_is_a_miss() -> None:
    bigger = copy.deepcopy(MET)
    bigger["backlog"]["after_to_rest"] = 1.546
    _, missed = judge(bigger)
    assert len(missed) == 1 and "metrics RSS after a backlog" in missed[0] and "1.546" in missed[0]


def test_a_hot_lead_lost_in_the_burst_is_a_miss() -> None:
    lost = copy.deepcopy(MET)
    lost["pipeline"]["webhook_latency_saturated"]["webhooks_received"] = 666
    _, missed = judge(lost)
    assert len(missed) == 1 and "every hot lead delivered in the burst" in missed[0]


def test_answers_other_than_202_in_the_ingest_run_are_a_miss() -> None:
    """A 429 is answered fast: counted as a lead taken, it would flatter the ratio."""
    limited = copy.deepcopy(MET)
    limited["ingest"]["ingest_statuses"] = {202: 7819, 429: 2181}
    _, missed = judge(limited)
    assert len(missed) == 1 and "every lead answered 202" in missed[0] and "2181" in missed[0]
