"""Scoring end to end through the real broker: MQL crossings, duplicates, events out of
order, cooling with time, and the rules API (invalid rules, simulate, rescore)."""

import asyncio
import json
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
import yaml
from sqlalchemy import text

from services.scoring import passes, standings
from services.scoring.app import create_app
from services.scoring.config import ScoringSettings
from services.scoring.rules import default_rules_text
from shared import topics
from shared.events import Envelope
from shared.kafka import Publisher
from shared.tombstones import bury, erased_among
from tests.conftest import ADMIN, Servers, caught_up, eventually, running
from tests.helpers import events_of, lead_captured
from tests.scoring import factories
from tests.shared.test_no_personal_data_in_logs import every_log_line

YAML = {**ADMIN, "content-type": "application/yaml"}
COOL_AFTER_DAYS = yaml.safe_load(default_rules_text())["temperature"]["cool_after_days"]


@pytest.fixture(scope="module")
async def scoring(servers: Servers) -> AsyncIterator[httpx.AsyncClient]:
    settings = servers.settings(ScoringSettings, review_every_seconds=0.2)
    async with running(create_app(settings)) as client:
        yield client


@pytest.fixture(scope="module")
async def publish(servers: Servers) -> AsyncIterator[Any]:
    publisher = Publisher(servers.bootstrap, "test")

    async def send(*events: Envelope) -> None:
        await publisher.publish([(topics.LEAD_EVENTS, str(e.lead_id).encode(), e.to_bytes()) for e in events])

    yield send
    await publisher.stop()


def activity(kind: str, lead_id: uuid.UUID) -> Envelope:
    event = factories.activity(kind, at=datetime.now(UTC))
    return event.model_copy(update={"lead_id": lead_id})


async def classified(servers: Servers, lead_id: uuid.UUID, count: int) -> list[dict[str, Any]]:
    events = await events_of(
        servers.bootstrap, str(lead_id), until=lambda es: len(es) >= count, topic=topics.LEAD_CLASSIFICATIONS
    )
    return [e.data for e in events]


async def standing(client: httpx.AsyncClient, lead_id: uuid.UUID) -> dict[str, Any]:
    response = await client.get(f"/v1/leads/{lead_id}")
    assert response.status_code == 200, response.text
    return dict(response.json())


async def test_crossing_the_mql_threshold_emits_exactly_one_mql_transition_and_a_duplicate_changes_nothing(
    servers: Servers, scoring: httpx.AsyncClient, publish: Any
) -> None:
    captured = lead_captured(job_title="CEO", company="Qazaq Trade")  # fit 15: an executive
    lead_id = captured.lead_id
    webinars = [activity("webinar_attended", lead_id) for _ in range(3)]
    await publish(captured)
    await publish(webinars[0])  # engagement 8: still a lead
    await publish(webinars[1])  # engagement 16: fits and engaged, an MQL
    form = activity("form_submitted", lead_id)
    await publish(webinars[2], form)  # more, still an MQL
    await publish(form)  # the same event again, as a redelivery would bring it: not counted twice
    await caught_up(scoring._transport.app)  # type: ignore[attr-defined]

    now = await standing(scoring, lead_id)
    changes = len(now["history"])
    out = await classified(servers, lead_id, changes)
    stages = [(e.get("previous_stage"), e["stage"]) for e in out]
    assert stages.count(("lead", "mql")) == 1
    assert [s for s in stages if s[1] == "mql" and s[0] != "mql"] == [("lead", "mql")]
    assert now["stage"] == "mql" and now["engagement"] == 16 + 10
    assert len(out) == changes, "one lead.classified per stored change, none for the duplicate"
    webinar = next(h for h in now["breakdown"] if h["rule"] == "engagement.webinar_attended")
    assert webinar["points"] == 16 and "(capped)" in webinar["reason"]


async def test_an_activity_before_its_lead_is_kept_and_applied(
    servers: Servers, scoring: httpx.AsyncClient, publish: Any
) -> None:
    lead_id = uuid.uuid4()
    early = activity("trial_started", lead_id)
    await publish(early)
    first = await eventually(lambda: _found(scoring, lead_id), timeout=20)
    assert first["engagement"] == 15 and first["stage"] == "lead"
    await publish(lead_captured(lead_id, timeframe="about two months"))

    async def merged() -> dict[str, Any] | None:
        now = await standing(scoring, lead_id)
        return now if now["temperature"] == "warm" else None

    after = await eventually(merged, timeout=20)
    assert after["engagement"] == 15  # the early activity still counts
    assert after["score"] == after["fit"] + after["engagement"] + after["intent"]


async def _found(client: httpx.AsyncClient, lead_id: uuid.UUID) -> dict[str, Any] | None:
    response = await client.get(f"/v1/leads/{lead_id}")
    return dict(response.json()) if response.status_code == 200 else None


async def test_rules_are_validated_simulated_then_applied_by_rescore(
    servers: Servers, scoring: httpx.AsyncClient, publish: Any
) -> None:
    broken = default_rules_text().replace("half_life_days: 30", "half_life_days: -3")
    refused = await scoring.put("/v1/rules", content=broken, headers=YAML)
    assert refused.status_code == 422
    assert refused.headers["content-type"] == "application/problem+json"
    assert {"field": "engagement.half_life_days", "reason": "Input should be greater than 0"} in [
        {k: e[k] for k in ("field", "reason")} for e in refused.json()["errors"]
    ]
    not_yaml = await scoring.put("/v1/rules", content="fit: [unclosed", headers=YAML)
    assert not_yaml.status_code == 422 and "line 1" in not_yaml.json()["errors"][0]["field"]
    version = (await scoring.get("/v1/rules")).json()["version"]

    # Three leads a candidate rule must move: industry "simulated" is worth 30 under it.
    leads = [lead_captured(timeframe="about two months", industry="simulated") for _ in range(3)]
    await publish(*leads)
    for event in leads:
        await eventually(lambda e=event: _found(scoring, e.lead_id), timeout=20)
    before = [await standing(scoring, e.lead_id) for e in leads]
    assert {(s["stage"], s["score"]) for s in before} == {("lead", 15)}

    candidate = yaml.safe_load(default_rules_text())
    candidate["fit"]["industry"]["values"].append("simulated")
    candidate["fit"]["industry"]["points"] = 30
    report = await scoring.post("/v1/rules:simulate", json=candidate, headers=ADMIN)
    assert report.status_code == 200, report.text
    body = report.json()
    assert body["stage_moves"] == {"lead → mql": 3} and body["score_changes"] == 3
    assert body["temperature_moves"] == {}
    assert {e["lead_id"] for e in body["examples"]["stage: lead → mql"]} == {str(e.lead_id) for e in leads}
    unchanged = [await standing(scoring, e.lead_id) for e in leads]
    assert unchanged == before and (await scoring.get("/v1/rules")).json()["version"] == version

    accepted = await scoring.put("/v1/rules", json=candidate, headers=ADMIN)
    assert accepted.status_code == 201 and accepted.json()["version"] == version + 1
    started = await scoring.post("/v1/rescore", headers=ADMIN)
    assert started.status_code == 202
    status_url = started.json()["status_url"]

    async def finished() -> dict[str, Any] | None:
        run = (await scoring.get(status_url, headers=ADMIN)).json()
        return run if run["status"] != "running" else None

    run = await eventually(finished, timeout=60)
    assert run["status"] == "done" and run["done"] == run["total"] and run["changed"] >= 3
    after = [await standing(scoring, e.lead_id) for e in leads]
    assert {(s["stage"], s["score"], s["rules_version"]) for s in after} == {("mql", 45, version + 1)}
    published = await classified(servers, leads[0].lead_id, 2)
    assert published[-1]["cause"] == "rescore" and published[-1]["previous_stage"] == "lead"


async def test_an_inactive_hot_lead_cools_and_the_change_is_published(
    servers: Servers, scoring: httpx.AsyncClient, publish: Any
) -> None:
    hot = lead_captured(timeframe="immediately")
    await publish(hot)
    assert (await classified(servers, hot.lead_id, 1))[0]["temperature"] == "hot"
    # The review pass runs as if days had gone by: the clock is its argument, not a race.
    cools_at = datetime.fromisoformat(hot.data["captured_at"]) + timedelta(days=COOL_AFTER_DAYS["hot"])
    app = scoring._transport.app  # type: ignore[attr-defined]
    await passes.review_due(app.state.runtime.db, app.state.rulebook, now=cools_at - timedelta(minutes=1))
    assert (await standing(scoring, hot.lead_id))["temperature"] == "hot"
    await passes.review_due(app.state.runtime.db, app.state.rulebook, now=cools_at + timedelta(minutes=1))
    out = await classified(servers, hot.lead_id, 2)  # hot first, then cooled by the review pass
    assert (out[0]["temperature"], out[1]["temperature"]) == ("hot", "warm")
    assert out[1]["cause"] == "decay" and out[1]["previous_temperature"] == "hot"
    assert out[1]["score"] < out[0]["score"]


async def test_a_warm_lead_whose_day_nears_turns_hot_by_the_review_pass_and_is_published(
    servers: Servers, scoring: httpx.AsyncClient, publish: Any
) -> None:
    """A lead "in about two months", said 50 days ago, is 10 days off: hot, for a rep (003:57-61)."""
    warm = lead_captured(timeframe="about two months")
    await publish(warm)
    first = (await classified(servers, warm.lead_id, 1))[0]
    assert first["temperature"] == "warm"
    said = datetime.fromisoformat(warm.data["captured_at"])
    app = scoring._transport.app  # type: ignore[attr-defined]
    db, book = app.state.runtime.db, app.state.rulebook
    await passes.review_due(db, book, now=said + timedelta(days=45))
    assert (await standing(scoring, warm.lead_id))["temperature"] == "warm"
    await passes.review_due(db, book, now=said + timedelta(days=46, minutes=1))
    out = await classified(servers, warm.lead_id, 2)
    turned = (out[1]["temperature"], out[1]["previous_temperature"], out[1]["cause"])
    assert turned == ("hot", "warm", "decay")
    assert out[1]["score"] > first["score"]
    assert any("buying within 14 days" in hit["reason"] for hit in out[1]["breakdown"])


async def test_a_review_pass_meeting_an_erasure_under_way_waits_and_publishes_nothing_about_the_lead(
    servers: Servers, scoring: httpx.AsyncClient, publish: Any
) -> None:
    """The erasure has dropped what scoring held to publish about the lead (outbox, journal)
    and is about to delete its standing, when the pass comes to cool the lead."""
    hot = lead_captured(timeframe="immediately")
    await publish(hot)
    assert (await classified(servers, hot.lead_id, 1))[0]["temperature"] == "hot"
    cools_at = datetime.fromisoformat(hot.data["captured_at"]) + timedelta(days=COOL_AFTER_DAYS["hot"])
    app = scoring._transport.app  # type: ignore[attr-defined]
    db = app.state.runtime.db
    async with db.transaction() as erasure:
        await erased_among(erasure, [hot.lead_id], erasing={hot.lead_id})
        await bury(erasure, {hot.lead_id})
        review = asyncio.create_task(
            passes.review_due(db, app.state.rulebook, now=cools_at + timedelta(minutes=1))
        )

        async def waiting_or_done() -> bool:
            if review.done():
                return True
            waiting = await db.engine.connect()
            try:
                found = await waiting.execute(
                    text("SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock'")
                )
                return bool(found.scalar())
            finally:
                await waiting.close()

        await eventually(waiting_or_done)
        await standings.forget(erasure, {hot.lead_id})
    await review
    async with db.transaction() as session:
        key = {"key": str(hot.lead_id).encode()}
        left = await session.execute(
            text(
                "SELECT (SELECT count(*) FROM outbox WHERE key = :key)"
                " + (SELECT count(*) FROM journal WHERE key = :key)"
            ),
            key,
        )
        assert left.scalar() == 0


async def test_the_queue_pages_through_leads_by_score(
    servers: Servers, scoring: httpx.AsyncClient, publish: Any
) -> None:
    tag = uuid.uuid4().hex[:8]
    leads = [lead_captured(timeframe="immediately", need=f"queue {tag}", company=f"Q{i}") for i in range(7)]
    await publish(*leads)
    for event in leads:
        await eventually(lambda e=event: _found(scoring, e.lead_id), timeout=20)
    seen: list[dict[str, Any]] = []
    cursor = None
    while True:
        params = {"temperature": "hot", "limit": 3, **({"cursor": cursor} if cursor else {})}
        page = (await scoring.get("/v1/leads", params=params)).json()
        seen += page["items"]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    ids = [item["lead_id"] for item in seen]
    assert len(ids) == len(set(ids)), "no lead twice across pages"
    assert {str(e.lead_id) for e in leads} <= set(ids)
    assert all(item["temperature"] == "hot" for item in seen)
    scores = [item["score"] for item in seen]
    assert scores == sorted(scores, reverse=True)
    bad = await scoring.get("/v1/leads", params={"stage": "hottest", "cursor": "nonsense"})
    assert bad.status_code == 422 and {e["field"] for e in bad.json()["errors"]} >= {"stage"}


def not_understood_count(metrics: str, language: str) -> float:
    wanted = f'leadflow_timeframes_not_understood_total{{language="{language}"}}'
    return sum(float(line.split()[-1]) for line in metrics.splitlines() if line.startswith(wanted))


async def test_a_timeframe_nobody_understood_is_counted_and_shown_on_the_lead(
    scoring: httpx.AsyncClient, publish: Any
) -> None:
    before = not_understood_count((await scoring.get("/metrics")).text, "kk")
    lead_id = uuid.uuid4()
    await publish(lead_captured(lead_id, timeframe="жұлдыздар тоғысқанда", language="kk"))
    detail = await eventually(lambda: standing_if_any(scoring, lead_id))
    line = next(hit for hit in detail["breakdown"] if hit["rule"] == "intent.timeframe.not_understood")
    assert line == {
        "rule": "intent.timeframe.not_understood",
        "points": 0,
        "reason": "timeframe not understood: «жұлдыздар тоғысқанда»",
    }
    assert not_understood_count((await scoring.get("/metrics")).text, "kk") == before + 1
    # The operator teaches the rules the phrase, and checks what it would change first.
    candidate = yaml.safe_load(default_rules_text())
    candidate["timeframes"]["words"]["kk"]["жұлдыздар тоғысқанда"] = 0
    report = (await scoring.post("/v1/rules:simulate", json=candidate, headers=ADMIN)).json()
    assert report["temperature_moves"] == {"cold → hot": 1}
    assert [e["lead_id"] for e in report["examples"]["temperature: cold → hot"]] == [str(lead_id)]
    hot = uuid.uuid4()
    await publish(lead_captured(hot, timeframe="срочно", language="ru"))
    detail = await eventually(lambda: standing_if_any(scoring, hot))
    assert detail["temperature"] == "hot"
    assert any(
        "«срочно»" in hit["reason"] for hit in detail["breakdown"] if hit["rule"] == "intent.timeframe.hot"
    )


async def test_a_lead_in_a_language_nobody_reads_is_counted_as_other(
    scoring: httpx.AsyncClient, publish: Any
) -> None:
    """The label is the lead's free-text language: each new value was a series kept for good,
    so anyone with a page's key could grow scoring's memory and its /metrics without end."""
    before = not_understood_count((await scoring.get("/metrics")).text, "other")
    leads = [uuid.uuid4(), uuid.uuid4()]
    await publish(
        lead_captured(leads[0], timeframe="zzqx", language="一丁"),
        lead_captured(leads[1], timeframe="zzqx", language="Xq"),
    )
    for lead_id in leads:
        await eventually(lambda lead_id=lead_id: standing_if_any(scoring, lead_id))
    metrics = (await scoring.get("/metrics")).text
    assert not_understood_count(metrics, "other") == before + 2
    assert 'language="一丁"' not in metrics and 'language="xq"' not in metrics


async def standing_if_any(client: httpx.AsyncClient, lead_id: uuid.UUID) -> dict[str, Any] | None:
    response = await client.get(f"/v1/leads/{lead_id}")
    return response.json() if response.status_code == 200 else None


async def test_a_refused_moves_log_line_does_not_quote_what_sales_wrote_about_the_person(
    servers: Servers, scoring: httpx.AsyncClient, publish: Any
) -> None:
    """A sales outcome the lifecycle refuses (a lead that never bought cannot churn) is logged;
    its reason is free text about the person, names and all, which the logs' redaction of
    emails and phones does not catch: it stays in the lead's history, not in the log."""
    captured = lead_captured()
    said = "Айгерім Нұрланқызы said her husband Bolat will not pay"
    churned = factories.outcome("churned", reason=said).model_copy(update={"lead_id": captured.lead_id})
    with every_log_line() as written:
        await publish(captured, churned)

        async def noted() -> str | None:
            history = (
                (await standing(scoring, captured.lead_id))["history"]
                if await _known(scoring, captured.lead_id)
                else []
            )
            return next((h["note"] for h in history if h["note"] and "refused" in h["note"]), None)

        note = await eventually(noted, timeout=30)
    assert said in note, "the history keeps why"
    messages = [json.loads(line)["message"] for line in written.getvalue().splitlines()]
    assert any(str(captured.lead_id) in m and "cannot move to churned" in m for m in messages), messages
    for secret in ("Айгерім", "Нұрланқызы", "Bolat"):
        assert not any(secret in m for m in messages), f"the log carries {secret!r}"


async def _known(client: httpx.AsyncClient, lead_id: uuid.UUID) -> bool:
    return (await client.get(f"/v1/leads/{lead_id}")).status_code == 200


async def test_a_billion_days_typed_in_a_form_is_classified_cold(
    servers: Servers, scoring: httpx.AsyncClient, publish: Any
) -> None:
    """Its day is past the calendar's end: far off, not a lead that fails every attempt."""
    far = lead_captured(timeframe="1000000000", timezone="America/New_York")
    await publish(far)
    assert (await classified(servers, far.lead_id, 1))[0]["temperature"] == "cold"
