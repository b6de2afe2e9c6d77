"""The oversized-merge attack: one person posted again and again through a plain form, 50 new
custom fields of 1,000 characters each time. Once the profile would pass 100 custom fields the
new ones are left out (a public form is answered 202 as for a new person: a 422 told anyone the
person was known), the profile stays at 100, and the next hot lead still reaches the `lead.hot`
subscriber within a second."""

import time
import uuid
from collections import Counter
from typing import Any

import httpx
import pytest

from tests.faults.conftest import Pipeline, record
from tests.faults.stack import wait_until

pytestmark = pytest.mark.faults

POSTS, FIELDS, LENGTH = 25, 50, 1000
CUSTOM_FIELDS_KEPT = 100
WITHIN, MARGIN = 1.0, 1.0  # seconds from the POST to the subscriber; asserted with the margin


def oversized_form(email: str, post: int) -> dict[str, str]:
    """The email, and 50 custom fields named anew each post, 1,000 characters each."""
    fields = {f"p{post}_field{i}": (f"{post}-{i}-" + "x" * LENGTH)[:LENGTH] for i in range(FIELDS)}
    return {"email": email, **fields}


def hot_lead_seconds(pipeline: Pipeline, key: str) -> float:
    """Seconds from posting a new hot lead until the subscriber got its lead.hot (as the
    receiving process stamped it)."""
    stack = pipeline.stack
    body = {"email": f"hot-{uuid.uuid4().hex[:10]}@faults.example.kz", "timeframe": "immediately"}
    posted = time.monotonic()
    answer = stack.http.post(stack.url("ingest", "/v1/leads"), json=body, headers={"X-Source-Key": key})
    assert answer.status_code == 202, answer.text
    lead_id = answer.json()["lead_id"]
    wait_until(lambda: lead_id in pipeline.hot_webhooks.by_lead(), 60, interval=0.02, what="the lead.hot")
    return float(pipeline.hot_webhooks.arrived[lead_id] - posted)


def attack(pipeline: Pipeline, source_id: str) -> list[httpx.Response]:
    stack, email = pipeline.stack, f"attacker-{uuid.uuid4().hex[:10]}@faults.example.kz"
    form = stack.url("ingest", f"/v1/forms/{source_id}")
    accept = {"Accept": "application/json"}
    return [stack.http.post(form, data=oversized_form(email, post), headers=accept) for post in range(POSTS)]


@pytest.mark.timeout(300)
def test_an_oversized_merge_is_refused_and_the_next_hot_lead_is_handed_on_within_a_second(
    pipeline: Pipeline,
) -> None:
    pipeline.healthy()
    source = pipeline.source("attack")
    before = hot_lead_seconds(pipeline, source["key"])
    began = time.monotonic()
    answers = attack(pipeline, source["id"])
    attack_seconds = time.monotonic() - began
    after = hot_lead_seconds(pipeline, source["key"])
    statuses = [a.status_code for a in answers]
    figures: dict[str, Any] = {
        "posts": len(answers),
        "answers": " ".join(f"{n}x{code}" for code, n in Counter(statuses).items()),
        "attack_seconds": round(attack_seconds, 2),
        "hot_lead_seconds_before": round(before, 3),
        "hot_lead_seconds_after": round(after, 3),
    }
    record("oversized merge", figures, tuple(figures))
    assert statuses == [202] * POSTS, "answered as for a new person, known or not"
    assert {a.json()["lead_id"] for a in answers} == {answers[0].json()["lead_id"]}, "each merged"
    kept = pipeline.stack.get("ingest", f"/v1/leads/{answers[0].json()['lead_id']}")
    assert len(kept["attributes"]["custom"]) == CUSTOM_FIELDS_KEPT
    assert after < WITHIN + MARGIN, figures
