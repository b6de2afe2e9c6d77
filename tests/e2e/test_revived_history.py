"""A lead imported as history that comes back live, through the whole stack: imported with the
date it enquired 65 days ago (handed to no rep), the same person sends the form today asking to
be called now; ingest tells it as their repeat form (an activity, not a capture), scoring as new
interest, nurture hands it to the rep at once, and metrics' speed-to-lead times it from today, not
from the enquiry 65 days back (found by the owner's review: it read 65 days to the webhook)."""

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.e2e.test_thin_slice import ADMIN, running_stack, wait_until, webhooks_about
from tests.receiver import webhook_receiver

pytestmark = pytest.mark.e2e
JSON = {**ADMIN, "content-type": "application/json"}


def test_a_lead_revived_from_history_is_timed_from_its_revival(tmp_path: Path) -> None:
    enquired = datetime.now(UTC).replace(microsecond=0) - timedelta(days=65)
    with running_stack(tmp_path) as stack, httpx.Client(timeout=5) as client, webhook_receiver() as receiver:
        web = client.post(
            stack.url("ingest", "/v1/sources"), headers=JSON, json={"name": "Web", "channel": "web_form"}
        ).json()
        rep = client.post(
            stack.url("nurture", "/v1/reps"),
            headers=ADMIN,
            json={"name": "Dana", "webhook_url": receiver.url},
        ).json()
        started = client.post(
            stack.url("ingest", "/v1/imports"),
            params={"tz": "UTC"},
            headers={"X-Source-Key": web["key"], "content-type": "text/csv"},
            content=f"email,Дата обращения\nback@hist.kz,{enquired:%Y-%m-%d %H:%M}\n".encode(),
        )
        assert started.status_code == 202, started.text
        scoring = stack.url("scoring")
        [imported] = wait_until(
            lambda: client.get(f"{scoring}/v1/leads", headers=ADMIN).json()["items"], timeout=20
        )
        lead_id = imported["lead_id"]

        again = client.post(
            stack.url("ingest", "/v1/leads"),
            headers={"X-Source-Key": web["key"]},
            json={"email": "back@hist.kz", "timeframe": "immediately"},
        )
        assert again.status_code == 202, again.text
        assert again.json()["lead_id"] == lead_id, "the same person"
        wait_until(lambda: "lead.hot" in webhooks_about(receiver, rep["webhook_secret"], lead_id), timeout=20)

        def speed() -> dict[str, Any]:
            response = client.get(stack.url("metrics", "/v1/speed-to-lead"), headers=ADMIN)
            assert response.status_code == 200, response.text
            return dict(response.json()["overall"])

        overall = wait_until(
            lambda: speed()["to_first_webhook_seconds"]["count"] == 1 and speed(), timeout=20
        )
        assert overall["to_first_webhook_seconds"]["p99"] < 60, overall
        since = {
            "from": f"{enquired - timedelta(days=1):%Y-%m-%d}",
            "to": f"{enquired + timedelta(days=1):%Y-%m-%d}",
        }
        then = client.get(stack.url("metrics", "/v1/speed-to-lead"), params=since, headers=ADMIN).json()
        assert then["overall"]["to_first_webhook_seconds"]["count"] == 0, "not in the enquiry's days"
