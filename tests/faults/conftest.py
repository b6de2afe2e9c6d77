"""One `leadflow dev` for the fault scenarios, started as a user starts it, with real localhost
receivers around it (tests.faults.sinks): the SMTP server nurture sends follow-up emails to, a
subscriber of `lead.hot` and a rep's webhook. Each scenario leaves it healthy and uses a source
of its own, so any of them runs alone or in any order. Each one's figures go to
tests/artifacts/faults.json; the stack's output and logs to tests/artifacts/faults-logs/."""

import json
import shutil
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from tests.conftest import ARTIFACTS
from tests.faults.checks import HotWebhooks
from tests.faults.sinks import Sinks
from tests.faults.stack import FaultStack, wait_until

SUMMARY = ARTIFACTS / "faults.json"
LOGS = ARTIFACTS / "faults-logs"
SUBSCRIBER, REP = "/subscriber", "/rep"
SUMMARY_FIELDS = (
    "accepted",
    "classified",
    "hot",
    "delivered",
    "distinct_webhook_ids",
    "duplicates",
    "emails_sent_twice",
    "touches_to_be_sent_again",
    "touches_in_doubt",
    "heal_seconds",
    "settle_seconds",
    "scenario_seconds",
)
summaries: list[str] = []


@dataclass
class Pipeline:
    stack: FaultStack
    sinks: Sinks  # nurture's SMTP server; the subscriber of lead.hot; the one rep's webhook
    endpoint: dict[str, Any]  # the subscription
    hot_webhooks: HotWebhooks  # what the subscriber received

    def source(self, name: str, **settings: Any) -> dict[str, Any]:
        """A new source (its id and key), so the scenario's funnel is its own."""
        body = {"name": f"{name} {uuid.uuid4().hex[:6]}", "channel": "landing_page", **settings}
        return self.stack.post("ingest", "/v1/sources", body)

    def healthy(self) -> dict[str, Any]:
        """Once every part runs and every /readyz is 200: the parts as `leadflow status` shows them."""
        wait_until(self.stack.healthy, 120, interval=0.2, what="a healthy stack to start from")
        shown = self.stack.cli_status()
        assert shown["exit_code"] == 0 and self.stack.all_running(shown["parts"]), shown
        return dict(shown["parts"])


def period(started: datetime) -> dict[str, str]:
    """A funnel period covering a scenario that started at `started`."""
    return {
        "from": (started - timedelta(minutes=1)).isoformat(),
        "to": (datetime.now(UTC) + timedelta(hours=1)).isoformat(),
    }


@pytest.fixture(scope="session")
def pipeline(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Pipeline]:
    SUMMARY.unlink(missing_ok=True)  # this run's figures only
    home = tmp_path_factory.mktemp("faults")
    sinks = Sinks(home / "sinks")
    sinks.start()
    env = {
        "LEADFLOW_NURTURE_SMTP_PORT": str(sinks.ports["smtp"]),
        # The oversized-merge attack posts its 25 forms from this one address, as an attacker
        # would from many: the limit of form posts per address (10 a minute) would hold it back.
        "LEADFLOW_RATE_LIMIT_PER_IP": "",
    }
    stack = FaultStack(home / "leadflow", env)
    try:
        stack.start()
        endpoint = stack.post(
            "nurture", "/v1/webhooks", {"url": sinks.url(SUBSCRIBER), "events": ["lead.hot"]}
        )
        stack.post("nurture", "/v1/reps", {"name": "Aigerim", "webhook_url": sinks.url(REP)})
        yield Pipeline(stack, sinks, endpoint, HotWebhooks(sinks, SUBSCRIBER, endpoint["secret"]))
    finally:
        code = stack.stop() if stack.running() else 0
        left_behind = stack.left_behind()
        sinks.stop()
        keep_logs(stack)
    assert code == 0, stack.output()[-3000:]
    assert left_behind == [], "processes of leadflow dev left running"


def keep_logs(stack: FaultStack) -> None:
    """The output of `leadflow dev` and each part's log, for whoever reads a failure."""
    shutil.rmtree(LOGS, ignore_errors=True)
    LOGS.mkdir(parents=True)
    (LOGS / "leadflow-dev.txt").write_text(stack.output())
    for log in (stack.home / "logs").glob("*.log"):
        shutil.copy(log, LOGS / log.name)


NOISE = ("Unable connect to node", "Unable to update metadata", "not found in cluster metadata")


def recent_warnings(stack: FaultStack, per_service: int = 12) -> str:
    """The last warnings and errors each part logged (the broker's connection noise left out)."""
    shown = []
    for log in sorted((stack.home / "logs").glob("*.log")):
        found = []
        for line in log.read_text(errors="replace").splitlines():
            try:
                entry = json.loads(line)
            except ValueError:
                continue
            message = str(entry.get("message", ""))
            if entry.get("level") in ("WARNING", "ERROR") and not any(n in message for n in NOISE):
                found.append(f"  {entry.get('time')} {entry.get('logger')}: {message[:300]}")
        shown.append(f"{log.stem}: the last {min(len(found), per_service)} of {len(found)} warnings")
        shown += found[-per_service:]
    return "\n".join(shown)


def standing(stack: FaultStack) -> str:
    """What metrics' /v1/health says is behind: each consumer group's lag by topic and each
    service's outbox backlog, where not 0 (which part of a failed scenario stopped moving)."""
    try:
        health = stack.get("metrics", "/v1/health")
    except Exception as error:  # a report of a failure: say why there is none
        return f"metrics' /v1/health did not answer: {error!r}"
    lags = {
        group: {topic: n for topic, n in topics.items() if n}
        for group, topics in health.get("consumer_lag", {}).items()
    }
    behind = {group: topics for group, topics in lags.items() if topics}
    backlog = {service: n for service, n in health.get("outbox_backlog", {}).items() if n}
    return "\n".join(
        [
            f"consumer groups behind: {json.dumps(behind) if behind else 'none'}",
            f"outbox backlogs: {json.dumps(backlog) if backlog else 'none'}",
            f"problems: {json.dumps(health.get('problems', []))[:600]}",
        ]
    )


def record(scenario: str, figures: dict[str, Any], shown: tuple[str, ...] = SUMMARY_FIELDS) -> None:
    """One line on the terminal (the `shown` figures), and all of them kept in
    tests/artifacts/faults.json."""
    line = f"{scenario}: " + " ".join(f"{k}={figures[k]}" for k in shown if k in figures)
    print(line)
    summaries.append(line)
    ARTIFACTS.mkdir(exist_ok=True)
    kept = json.loads(SUMMARY.read_text()) if SUMMARY.exists() else {}
    SUMMARY.write_text(json.dumps(kept | {scenario: figures}, indent=2, sort_keys=True))


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    """A failed scenario's report carries what the stack's parts last warned of: CI keeps only
    the terminal's output, not tests/artifacts/faults-logs."""
    outcome = yield
    report = outcome.get_result()  # type: ignore[attr-defined]
    pipeline = getattr(item, "funcargs", {}).get("pipeline")
    if report.when == "call" and report.failed and isinstance(pipeline, Pipeline):
        report.sections.append(("where the pipeline stood", standing(pipeline.stack)))
        report.sections.append(("leadflow's warnings", recent_warnings(pipeline.stack)))


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if summaries:
        terminalreporter.section("fault scenarios")
        for line in summaries:
            terminalreporter.write_line(line)
