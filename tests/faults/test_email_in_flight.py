"""The kill that lands between an email leaving and nurture recording it, made certain: the SMTP
server takes the email (250) and then keeps nurture waiting for its answer to QUIT. Right then
nurture is killed with SIGKILL, or PostgreSQL is (and the answer goes at once, so nurture
records the send while the database is down). The email has gone; it must not go again:
nurture alive keeps the outcome and records it once the database is back; nurture killed
leaves the touch 'sending', and when its lease lapses it fails as in doubt (at most once).

In the kill scenarios (test_kills.py) the same thing happens by chance: an email received
whose touch nurture still holds as unsent is counted as `touches_to_be_sent_again`."""

import contextlib
import time
import uuid
from typing import Any

import pytest

from tests.faults.checks import emails_by_recipient
from tests.faults.conftest import Pipeline, record
from tests.faults.sinks import HELD
from tests.faults.stack import wait_until

pytestmark = pytest.mark.faults

CLAIM_SECONDS = 120.0  # nurture's touch lease (LEADFLOW_NURTURE_TOUCH_LEASE_SECONDS, its default)
AFTER_THE_CLAIM = 30.0  # nurture looks for due touches every second
FINAL = ("sent", "failed", "cancelled")


def first_touch(pipeline: Pipeline, lead_id: str) -> dict[str, Any]:
    timeline = pipeline.stack.get("nurture", f"/v1/leads/{lead_id}/touches")
    return next(t for t in timeline if t["step"] == 0)


def email_held(pipeline: Pipeline, part: str) -> tuple[str, str, int]:
    """A warm lead whose first email the SMTP server takes and then holds nurture on; returns
    its id, its address and the pid `leadflow status` gives `part`."""
    stack, sinks = pipeline.stack, pipeline.sinks
    pid = int(pipeline.healthy()[part]["pid"])
    source = pipeline.source(f"email in flight, {part} killed")
    address = f"{HELD}{uuid.uuid4().hex[:10]}@faults.example.kz"
    held = sinks.quits_held()
    lead = {"email": address, "first_name": "Аружан", "timeframe": "about two months", "consent": True}
    answer = stack.http.post(
        stack.url("ingest", "/v1/leads"), json=lead, headers={"X-Source-Key": source["key"]}
    )
    assert answer.status_code == 202, answer.text
    wait_until(lambda: sinks.quits_held() > held, 60, what="the email taken and nurture held on QUIT")
    return answer.json()["lead_id"], address, pid


@pytest.mark.timeout(480)
@pytest.mark.parametrize("part", ["nurture", "postgres"])
def test_an_email_that_left_before_a_kill_is_not_sent_again(pipeline: Pipeline, part: str) -> None:
    stack, sinks = pipeline.stack, pipeline.sinks
    lead_id, address, pid = email_held(pipeline, part)
    claimed = time.monotonic()  # at most: the touch was claimed before its email was sent
    killed_at = stack.kill(part, pid)
    sinks.release(sinks.quits_held())  # nurture, if alive, now records the send
    heal = stack.heal(part, pid, killed_at, 90)
    wait_until(stack.cli_agrees, 60, interval=1, what="`leadflow status`: every part running")
    after_heal = first_touch(pipeline, lead_id)
    # Until nurture is done with the touch, or well past the moment its claim lapses: the test
    # judges only what the SMTP server received, never this wait.
    with contextlib.suppress(AssertionError):
        left = claimed + CLAIM_SECONDS + AFTER_THE_CLAIM - time.monotonic()
        wait_until(lambda: first_touch(pipeline, lead_id)["status"] in FINAL, left, interval=1)
    copies = emails_by_recipient(sinks)[address]
    touch = first_touch(pipeline, lead_id)
    record(
        f"email in flight, kill -9 {part}",
        {
            "heal_seconds": round(heal, 1),
            "touch_after_heal": f"{after_heal['status']} after {after_heal['attempts']} tries",
            "touch_at_the_end": f"{touch['status']} after {touch['attempts']} tries",
            "emails_received": len(copies),
            "distinct_message_ids": len(set(copies)),
            "duplicates": len(copies) - 1,
        },
    )
    assert copies, "the email was received"
    assert len(copies) == 1, f"the email was received {len(copies)} times; its touch: {touch}"
    # Nurture alive records the send once PostgreSQL is back; nurture killed leaves it in doubt.
    assert touch["status"] == ("sent" if part == "postgres" else "failed"), touch
