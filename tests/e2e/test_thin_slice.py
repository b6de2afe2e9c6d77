"""The whole pipeline started as a user starts it (`leadflow dev`), driven over HTTP."""

import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families
from standardwebhooks.webhooks import Webhook

from tests.receiver import Receiver, webhook_receiver
from tests.stack import DevProcess

pytestmark = pytest.mark.e2e
ADMIN = {"Authorization": "Bearer dev-admin-token"}


@contextmanager
def running_stack(home: Path, only: tuple[str, ...] = ()) -> Iterator[DevProcess]:
    stack = DevProcess(home, only=only)
    stack.start()
    try:
        yield stack
    finally:
        assert stack.service_processes(), "the stack should have started its services"
        left_behind = stack.stop()
        assert stack.process is not None and stack.process.returncode == 0
        assert left_behind == []


def wait_until(check, timeout: float = 10.0, interval: float = 0.02):  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout}s (last: {result!r})")
        time.sleep(interval)


def applied_classifications(client: httpx.Client, stack: DevProcess) -> float:
    text = client.get(stack.url("nurture", "/metrics")).text
    return sum(
        sample.value
        for family in text_string_to_metric_families(text)
        if family.name == "leadflow_events_in"
        for sample in family.samples
        if sample.name == "leadflow_events_in_total" and sample.labels.get("type") == "lead.classified"
    )


def webhooks_about(receiver: Receiver, secret: str, lead_id: str) -> list[str]:
    """The types of the webhooks received about one lead; each is verified with the rep's
    secret (an unsigned or forged one fails the test)."""
    payloads = [Webhook(secret).verify(r.body, r.headers) for r in receiver.received()]
    return [p["type"] for p in payloads if p["data"].get("lead_id") == lead_id]


def landing_and_rep(
    client: httpx.Client, stack: DevProcess, receiver: Receiver
) -> tuple[dict[str, str], str]:
    """A landing-page source and a rep whose webhooks go to `receiver`: the source's key header
    and the rep's signing secret."""
    source = client.post(
        stack.url("ingest", "/v1/sources"), headers=ADMIN, json={"name": "Landing", "channel": "landing_page"}
    ).json()
    rep = client.post(
        stack.url("nurture", "/v1/reps"), headers=ADMIN, json={"name": "Aigerim", "webhook_url": receiver.url}
    ).json()
    return {"X-Source-Key": source["key"]}, rep["webhook_secret"]


def test_hot_lead_reaches_the_rep_signed_and_cold_lead_does_not(tmp_path: Path) -> None:
    with running_stack(tmp_path) as stack, httpx.Client(timeout=5) as client, webhook_receiver() as receiver:
        key, secret = landing_and_rep(client, stack, receiver)
        posted = time.monotonic()
        hot = client.post(
            stack.url("ingest", "/v1/leads"),
            headers=key,
            json={"email": "aruzhan@example.kz", "timeframe": "immediately"},
        )
        assert hot.status_code == 202
        hot_id = hot.json()["lead_id"]
        wait_until(lambda: "lead.hot" in webhooks_about(receiver, secret, hot_id), timeout=5)
        assert time.monotonic() - posted < 5
        cold = client.post(
            stack.url("ingest", "/v1/leads"),
            headers=key,
            json={"phone": "+994501234567", "timeframe": "none"},
        )
        assert cold.status_code == 202
        # As a Russian-speaking customer writes it: no timeframe field, the ask in the message.
        russian = client.post(
            stack.url("ingest", "/v1/leads"),
            headers=key,
            json={"phone": "+77017654321", "language": "ru", "message": "хочу купить сегодня, перезвоните"},
        )
        assert russian.status_code == 202
        russian_id = russian.json()["lead_id"]
        wait_until(lambda: "lead.hot" in webhooks_about(receiver, secret, russian_id), timeout=10)
        payloads = [Webhook(secret).verify(r.body, r.headers) for r in receiver.received()]
        [notice] = [
            p["data"] for p in payloads if p["type"] == "lead.hot" and p["data"]["lead_id"] == russian_id
        ]
        assert notice["language"] == "ru" and notice["message"].startswith("Горячий лид")

        def funnel() -> dict[str, Any]:
            return dict(client.get(stack.url("metrics", "/v1/funnel"), headers=ADMIN).json())

        wait_until(lambda: funnel()["by_temperature"] == {"hot": 2, "cold": 1})
        assert funnel()["total"] == 3
        wait_until(lambda: applied_classifications(client, stack) == 3)
        # Whatever else may come (the hot lead's call task, in its call window): one hand-off,
        # of the hot lead, and nothing ever about the cold one.
        assert webhooks_about(receiver, secret, hot_id).count("lead.hot") == 1
        cold_id = cold.json()["lead_id"]
        assert webhooks_about(receiver, secret, cold_id) == []
        touches = client.get(stack.url("nurture", f"/v1/leads/{cold_id}/touches"), headers=ADMIN)
        assert touches.status_code == 200, touches.text
        assert {t["channel"] for t in touches.json()} <= {"email"}, "no call task can reach the rep later"


def test_spam_asking_for_it_now_reaches_no_rep(tmp_path: Path) -> None:
    """Hot by its timeframe, disqualified by its message: no hand-off, no SLA, no playbook."""
    with running_stack(tmp_path) as stack, httpx.Client(timeout=5) as client, webhook_receiver() as receiver:
        key, secret = landing_and_rep(client, stack, receiver)
        posted = [
            client.post(stack.url("ingest", "/v1/leads"), headers=key, json=lead)
            for lead in (
                {"email": "spam@example.kz", "timeframe": "now", "message": "spam"},
                {"email": "curious@example.kz", "timeframe": "now", "message": "just curious, inquiry only"},
                {"email": "buyer@example.kz", "timeframe": "now"},
            )
        ]
        assert [p.status_code for p in posted] == [202, 202, 202]
        *unwanted, buyer = [p.json()["lead_id"] for p in posted]
        wait_until(lambda: "lead.hot" in webhooks_about(receiver, secret, buyer), timeout=10)
        wait_until(lambda: applied_classifications(client, stack) >= 3)
        for lead_id in unwanted:
            scored = client.get(stack.url("scoring", f"/v1/leads/{lead_id}"), headers=ADMIN).json()
            assert (scored["temperature"], scored["stage"]) == ("hot", "disqualified")
            touches = client.get(stack.url("nurture", f"/v1/leads/{lead_id}/touches"), headers=ADMIN)
            assert touches.status_code == 200 and touches.json() == []
            assert webhooks_about(receiver, secret, lead_id) == []


def test_a_hot_lead_reaches_its_rep_while_nurtures_follow_up_process_is_frozen(tmp_path: Path) -> None:
    """The hand-off runs in a process of its own: nurture's main process (follow-up, its API)
    stopped dead does not hold a hot lead back, and once it runs again it sends nothing twice."""
    with running_stack(tmp_path) as stack, httpx.Client(timeout=5) as client, webhook_receiver() as receiver:
        key, secret = landing_and_rep(client, stack, receiver)
        nurture = stack.service_processes()["nurture"]
        assert "hand-off" in stack.service_processes()
        nurture.suspend()
        try:
            hot = client.post(
                stack.url("ingest", "/v1/leads"),
                headers=key,
                json={"email": "dana@example.kz", "timeframe": "immediately"},
            )
            assert hot.status_code == 202
            hot_id = hot.json()["lead_id"]
            wait_until(lambda: "lead.hot" in webhooks_about(receiver, secret, hot_id), timeout=15)
        finally:
            nurture.resume()
        wait_until(lambda: applied_classifications(client, stack) == 1, timeout=30)
        assert webhooks_about(receiver, secret, hot_id).count("lead.hot") == 1


def test_a_second_run_reuses_the_data(tmp_path: Path) -> None:
    only = ("ingest", "metrics")  # what the data goes through; fewer services start faster
    with running_stack(tmp_path, only) as stack, httpx.Client(timeout=5) as client:
        source = client.post(
            stack.url("ingest", "/v1/sources"),
            headers=ADMIN,
            json={"name": "Landing", "channel": "landing_page"},
        ).json()
        lead = client.post(
            stack.url("ingest", "/v1/leads"),
            headers={"X-Source-Key": source["key"]},
            json={"phone": "+77015550101"},
        )
        assert lead.status_code == 202, lead.text
        wait_until(lambda: client.get(stack.url("metrics", "/v1/funnel"), headers=ADMIN).json()["total"] == 1)
    with running_stack(tmp_path, only) as stack, httpx.Client(timeout=5) as client:
        sources = client.get(stack.url("ingest", "/v1/sources"), headers=ADMIN).json()
        funnel = client.get(stack.url("metrics", "/v1/funnel"), headers=ADMIN).json()
    assert [s["name"] for s in sources] == ["Landing"]
    assert funnel["total"] == 1
