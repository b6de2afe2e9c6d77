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

from shared.devprocess import DevProcess
from tests.receiver import webhook_receiver

pytestmark = pytest.mark.e2e
ADMIN = {"Authorization": "Bearer dev-admin-token"}


@pytest.fixture(scope="module")
def stack_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("leadflow-home")


@contextmanager
def running_stack(home: Path) -> Iterator[DevProcess]:
    stack = DevProcess(home)
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


def test_hot_lead_reaches_the_rep_signed_and_cold_lead_does_not(stack_home: Path) -> None:
    with (
        running_stack(stack_home) as stack,
        httpx.Client(timeout=5) as client,
        webhook_receiver() as receiver,
    ):
        source = client.post(
            stack.url("ingest", "/v1/sources"),
            headers=ADMIN,
            json={"name": "Landing", "channel": "landing_page"},
        ).json()
        rep = client.post(
            stack.url("nurture", "/v1/reps"),
            headers=ADMIN,
            json={"name": "Aigerim", "webhook_url": receiver.url},
        ).json()
        key = {"X-Source-Key": source["key"]}

        posted = time.monotonic()
        hot = client.post(
            stack.url("ingest", "/v1/leads"),
            headers=key,
            json={"email": "aruzhan@example.kz", "timeframe": "immediately"},
        )
        assert hot.status_code == 202
        # The hand-off (a call task may follow, in the lead's call window).
        webhook = wait_until(
            lambda: next((r for r in receiver.received() if b'"lead.hot"' in r.body), None), timeout=5
        )
        assert time.monotonic() - posted < 5
        payload = Webhook(rep["webhook_secret"]).verify(webhook.body, webhook.headers)
        assert payload["data"]["lead_id"] == hot.json()["lead_id"]

        cold = client.post(
            stack.url("ingest", "/v1/leads"),
            headers=key,
            json={"phone": "+994501234567", "timeframe": "none"},
        )
        assert cold.status_code == 202

        def funnel() -> dict[str, Any]:
            return dict(client.get(stack.url("metrics", "/v1/funnel")).json())

        wait_until(lambda: funnel()["by_temperature"] == {"hot": 1, "cold": 1})
        assert funnel()["total"] == 2
        wait_until(lambda: applied_classifications(client, stack) == 2)
        assert len(receiver.received()) == 1


def test_a_second_run_reuses_the_data(stack_home: Path) -> None:
    with running_stack(stack_home) as stack, httpx.Client(timeout=5) as client:
        sources = client.get(stack.url("ingest", "/v1/sources"), headers=ADMIN).json()
        funnel = client.get(stack.url("metrics", "/v1/funnel")).json()
    assert [s["name"] for s in sources] == ["Landing"]
    assert funnel["total"] == 2
