"""`make run` stopped (SIGTERM to `leadflow dev`) and started again with the same LEADFLOW_HOME
keeps the numbers: the funnel, CAC, LTV and speed-to-lead are the same after the restart, once
every service has published its journal again into the new (empty) broker and metrics has
read it all, and a rebuild of metrics' read model from its archive gives them exactly."""

import json
import re
import time
import uuid
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest

from shared.dev import NEW_DATABASE
from tests.faults.checks import get_many
from tests.faults.conftest import REP, Pipeline, period, record
from tests.faults.stack import FaultStack, wait_until
from tests.faults.stream import Stream

pytestmark = pytest.mark.faults

WON, ACKNOWLEDGED = 10, 10  # hot leads that buy; hot leads whose rep acknowledges them
REPUBLISHED = re.compile(r"republished \d+ journal messages to")
# The services that publish events of their own, and the parts of `leadflow dev` that run them:
# nurture's two parts share its outbox and take turns, so either may publish its journal again.
PUBLISHERS = {"ingest": ("ingest",), "scoring": ("scoring",), "nurture": ("nurture", "hand-off")}


def reports(stack: FaultStack, source_id: str, since: datetime) -> dict[str, Any]:
    """What metrics shows: the funnel (all of it, by channel with medians, this source's), CAC,
    LTV and speed-to-lead."""
    wide = {
        "from": (since - timedelta(days=1)).isoformat(),
        "to": (date.today() + timedelta(days=2)).isoformat(),
    }
    return {
        "funnel": stack.get("metrics", "/v1/funnel"),
        "funnel_by_channel": stack.get("metrics", "/v1/funnel", group_by="channel", medians="true"),
        "funnel_of_source": stack.get("metrics", "/v1/funnel", source=source_id, **period(since)),
        "cac": stack.get("metrics", "/v1/cac", group_by="channel", **wide),
        "ltv": stack.get("metrics", "/v1/ltv", group_by="channel"),
        "speed_to_lead": stack.get("metrics", "/v1/speed-to-lead", group_by="rep"),
    }


def differences(before: Any, after: Any, path: str = "") -> list[str]:
    """Where two JSON documents differ, as paths with both values."""
    if isinstance(before, dict) and isinstance(after, dict):
        keys = sorted(set(before) | set(after))
        return [d for k in keys for d in differences(before.get(k), after.get(k), f"{path}/{k}")]
    if isinstance(before, list) and isinstance(after, list) and len(before) == len(after):
        return [
            d
            for i, (b, a) in enumerate(zip(before, after, strict=True))
            for d in differences(b, a, f"{path}/{i}")
        ]
    return [] if before == after else [f"{path}: {before!r} -> {after!r}"]


def caught_up(stack: FaultStack) -> bool:
    """No consumer group behind and no outbox row waiting (metrics' /v1/health)."""
    health = stack.get("metrics", "/v1/health")
    lags = [n for group in health["consumer_lag"].values() for n in group.values()]
    return bool(lags) and not any(lags) and not any(health["outbox_backlog"].values())


def touches_done(stack: FaultStack, lead_ids: list[str]) -> bool:
    """Nurture has sent (or given up on) every touch of these leads that is due by now: a touch
    sent later would still change the numbers (touches to conversion)."""
    now = datetime.now(UTC)
    timelines = get_many([stack.url("nurture", f"/v1/leads/{i}/touches") for i in lead_ids])
    return all(
        timeline is not None
        and all(
            t["status"] not in ("scheduled", "sending") or datetime.fromisoformat(t["due_at"]) > now
            for t in timeline
        )
        for timeline in timelines.values()
    )


def republished(stack: FaultStack) -> dict[str, int]:
    """How many times each service said it published its journal again (its parts' logs)."""
    said = lambda part: REPUBLISHED.findall((stack.home / "logs" / f"{part}.log").read_text(errors="replace"))  # noqa: E731
    return {service: sum(len(said(part)) for part in parts) for service, parts in PUBLISHERS.items()}


def handed_to_the_rep(pipeline: Pipeline, lead_ids: set[str]) -> dict[str, dict[str, Any]]:
    """The `acknowledge` block of each lead.hot webhook the rep received about these leads."""
    found = {}
    for request, _ in pipeline.sinks.webhooks(REP):
        body = json.loads(request.body)
        if body["type"] == "lead.hot" and body["data"]["lead_id"] in lead_ids:
            found[body["data"]["lead_id"]] = body["data"]["acknowledge"]
    return found


def sales_happen(pipeline: Pipeline, stream: Stream, key: str) -> None:
    """The rep acknowledges some hot leads and some buy; money is spent on the channel."""
    stack, hot = pipeline.stack, [lead for lead in stream.accepted() if lead.temperature == "hot"]
    ids = {str(lead.lead_id) for lead in hot}
    handed = wait_until(lambda: (h := handed_to_the_rep(pipeline, ids)) and len(h) >= ACKNOWLEDGED and h, 60)
    for acknowledge in list(handed.values())[:ACKNOWLEDGED]:
        answer = stack.http.post(acknowledge["url"], json=acknowledge["body"])
        assert answer.status_code == 200, answer.text
    for lead in hot[:WON]:
        body = {"lead_id": lead.lead_id, "type": "won", "amount": 150_000, "currency": "KZT"}
        answer = stack.http.post(
            stack.url("ingest", "/v1/outcomes"), json=body, headers={"X-Source-Key": key}
        )
        assert answer.status_code == 202, answer.text
    today = date.today().isoformat()
    spend = {"period_start": today, "period_end": today, "category": "marketing", "amount": "500000"}
    stack.post("metrics", "/v1/spend", spend | {"currency": "KZT", "channel": "landing_page"})


def numbers_settled(pipeline: Pipeline, since: datetime) -> tuple[Callable[[], dict[str, Any]], Stream]:
    """Leads, hand-offs, acknowledgements, purchases and spend, until nothing is left in flight.
    Returns how to read the numbers (`reports`) and the stream."""
    stack = pipeline.stack
    source = pipeline.source("restart")
    stream = Stream(stack.url("ingest", "/v1/leads"), source["key"], tag=f"restart-{uuid.uuid4().hex[:8]}")
    stream.start()
    wait_until(lambda: len(stream.accepted()) >= 300, 60, what="300 leads accepted")
    stream.stop()
    crm = pipeline.source("crm", scope="history")  # sales report from a server: it may post outcomes
    sales_happen(pipeline, stream, crm["key"])
    own = {"source": source["id"], **period(since)}
    accepted = len(stream.accepted())
    wait_until(lambda: stack.get("metrics", "/v1/funnel", **own)["total"] == accepted, 120, what="the funnel")
    lead_ids = [str(lead.lead_id) for lead in stream.accepted()]
    # In one look, caught up on both sides of the touches: a purchase nurture had not read yet
    # when the touches looked done brings a thanks email, due at once, and a touch sent as
    # the pipeline looked caught up is still on its way to metrics; either would change the
    # numbers (touches to conversion) after they were read.
    settled = lambda: caught_up(stack) and touches_done(stack, lead_ids) and caught_up(stack)  # noqa: E731
    wait_until(settled, 180, interval=0.5, what="the touches due sent and the pipeline caught up")
    return lambda: reports(stack, source["id"], since), stream


def restarted(pipeline: Pipeline, report: Callable[[], dict[str, Any]]) -> dict[str, Any]:
    """SIGTERM to `leadflow dev`, then `leadflow dev` again on the same LEADFLOW_HOME: the
    numbers right after, and once every service has published its journal again into the new,
    empty broker and metrics has read it all."""
    stack = pipeline.stack
    assert stack.stop() == 0, stack.output()[-3000:]
    assert stack.left_behind() == [], "every process of the first run ended"
    assert stack.cli_status()["exit_code"] == 1, "`leadflow status`: not running"
    said = republished(stack)
    first_run = len(stack.output())
    restart_seconds = stack.start()
    assert NEW_DATABASE in stack.output()[:first_run], "the first start said its database was new"
    assert NEW_DATABASE not in stack.output()[first_run:], "the restart found the data kept"
    pipeline.healthy()
    right_after = report()
    again = lambda: all(n > said[s] for s, n in republished(stack).items())  # noqa: E731
    wait_until(again, 120, what="every journal published again")
    wait_until(lambda: caught_up(stack), 180, interval=0.5, what="metrics read the journals again")
    return {"restart_seconds": round(restart_seconds, 1), "right_after": right_after, "replayed": report()}


def rebuilt(stack: FaultStack, report: Callable[[], dict[str, Any]]) -> dict[str, Any]:
    """POST /v1/rebuild, then GET /v1/rebuild until idle: the numbers then."""
    began = time.monotonic()
    rebuild = stack.post("metrics", "/v1/rebuild", {})
    assert rebuild["status"] == "replaying", rebuild
    idle = lambda: stack.get("metrics", "/v1/rebuild")["status"] == "idle"  # noqa: E731
    wait_until(idle, 300, interval=0.2, what="the rebuild done")
    seconds = round(time.monotonic() - began, 1)
    return {"rebuild_seconds": seconds, "rebuilt_events": rebuild["events"], "rebuilt": report()}


@pytest.mark.timeout(600)
def test_a_restarted_stack_keeps_its_funnel_and_a_rebuild_reproduces_it(pipeline: Pipeline) -> None:
    stack = pipeline.stack
    pipeline.healthy()
    since = datetime.now(UTC)
    report, stream = numbers_settled(pipeline, since)
    before = report()
    assert before["funnel_of_source"]["total"] == len(stream.accepted())
    reached = {s["stage"]: s["count"] for s in before["funnel_of_source"]["stages"]}
    assert reached["customer"] == WON, before["funnel_of_source"]
    restart = restarted(pipeline, report)
    rebuild = rebuilt(stack, report)
    found = {
        "right after the restart": restart["right_after"],
        "after the journals were replayed": restart["replayed"],
        "after the rebuild": rebuild["rebuilt"],
    }
    differ = {when: differences(before, numbers) for when, numbers in found.items()}
    figures = {"accepted": len(stream.accepted()), "funnel_total": before["funnel"]["total"]}
    figures |= {k: v for k, v in (restart | rebuild).items() if k.endswith(("_seconds", "_events"))}
    shown = (
        "accepted",
        "funnel_total",
        "restart_seconds",
        "rebuild_seconds",
        "rebuilt_events",
        "differences",
    )
    record("restart and rebuild", figures | {"differences": differ}, shown)
    assert all(not d for d in differ.values()), differ
