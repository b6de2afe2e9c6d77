"""Imported CRM history is history, through the whole stack: a lead imported with the date it
enquired two months ago, then accepted and won through a CRM key with those months' dates,
reaches no rep and counts in no speed-to-lead or SLA figure, while a hot lead posted now still
goes to its rep at once. Found by a review: such leads were handed to reps as "Hot lead… Please
call now" (one already won), and speed-to-lead read 64 days to the first webhook."""

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.e2e.test_thin_slice import (
    ADMIN,
    running_stack,
    wait_until,
    webhooks_about,
)
from tests.receiver import webhook_receiver

pytestmark = pytest.mark.e2e
JSON = {**ADMIN, "content-type": "application/json"}


def test_imported_history_reaches_no_rep_and_no_speed_figure(tmp_path: Path) -> None:
    enquired = datetime.now(UTC).replace(microsecond=0) - timedelta(days=65)
    with running_stack(tmp_path) as stack, httpx.Client(timeout=5) as client, webhook_receiver() as receiver:
        web = client.post(
            stack.url("ingest", "/v1/sources"), headers=JSON, json={"name": "Web", "channel": "web_form"}
        ).json()
        crm = client.post(
            stack.url("ingest", "/v1/sources"),
            headers=JSON,
            json={"name": "CRM", "channel": "api", "scope": "history"},
        ).json()
        rep = client.post(
            stack.url("nurture", "/v1/reps"),
            headers=ADMIN,
            json={"name": "Dana", "webhook_url": receiver.url},
        ).json()
        dated = f"{enquired:%Y-%m-%d %H:%M}"
        csv = f"email,Дата обращения\nw1@hist.kz,{dated}\nw6@hist.kz,{dated}\n"
        started = client.post(
            stack.url("ingest", "/v1/imports"),
            params={"tz": "UTC"},
            headers={"X-Source-Key": web["key"], "content-type": "text/csv"},
            content=csv.encode(),
        )
        assert started.status_code == 202, started.text
        scoring = stack.url("scoring")
        imported = wait_until(
            lambda: (
                len(items := client.get(f"{scoring}/v1/leads", headers=ADMIN).json()["items"]) == 2 and items
            ),
            timeout=20,
        )
        email_of = {
            client.get(stack.url("ingest", f"/v1/leads/{i['lead_id']}"), headers=ADMIN).json()["email"]: i[
                "lead_id"
            ]
            for i in imported
        }
        lead_id, worked = email_of["w1@hist.kz"], email_of["w6@hist.kz"]
        crm_key = {"X-Source-Key": crm["key"]}
        for lead, kind, days, extra in (
            (lead_id, "sales_accepted", 2, {}),
            (lead_id, "won", 7, {"amount": 80000, "currency": "KZT"}),
            (worked, "sales_accepted", 2, {}),
            (worked, "meeting_booked", 5, {}),
        ):
            at = (enquired + timedelta(days=days)).isoformat()
            body = {"lead_id": lead, "type": kind, "occurred_at": at, **extra}
            posted = client.post(stack.url("ingest", "/v1/outcomes"), headers=crm_key, json=body)
            assert posted.status_code == 202, posted.text

        def stage_of(lead: str) -> str:
            return str(client.get(f"{scoring}/v1/leads/{lead}", headers=ADMIN).json()["stage"])

        wait_until(lambda: (stage_of(lead_id), stage_of(worked)) == ("customer", "opportunity"))

        live = client.post(
            stack.url("ingest", "/v1/leads"),
            headers={"X-Source-Key": web["key"]},
            json={"email": "now@example.kz", "timeframe": "immediately"},
        )
        assert live.status_code == 202, live.text
        live_id = live.json()["lead_id"]
        wait_until(lambda: "lead.hot" in webhooks_about(receiver, rep["webhook_secret"], live_id), timeout=10)

        # nurture followed both to their playbooks (its hand-offs run in the same transaction)
        def touches(lead: str) -> list[dict[str, Any]]:
            return list(client.get(stack.url("nurture", f"/v1/leads/{lead}/touches"), headers=ADMIN).json())

        wait_until(lambda: any(t["playbook"] == "customer" for t in touches(lead_id)), timeout=20)
        # the SQL playbook's call task ("call now") for the lead sales met in October: cancelled
        tasks = wait_until(lambda: [t for t in touches(worked) if t["channel"] == "call_task"], timeout=20)
        assert all(t["status"] == "cancelled" and t["detail"].startswith("history") for t in tasks), tasks
        for lead in (lead_id, worked):
            assert webhooks_about(receiver, rep["webhook_secret"], lead) == [], "history is no call now"

        def speed(**params: str) -> dict[str, Any]:
            response = client.get(stack.url("metrics", "/v1/speed-to-lead"), params=params, headers=ADMIN)
            assert response.status_code == 200, response.text
            return dict(response.json())

        overall = wait_until(lambda: speed()["overall"]["to_first_webhook_seconds"]["count"] == 1 and speed())
        assert overall["overall"]["to_first_webhook_seconds"]["p90"] < 60, "the live lead alone"
        period = {
            "from": f"{enquired - timedelta(days=1):%Y-%m-%d}",
            "to": f"{enquired + timedelta(days=10):%Y-%m-%d}",
        }
        then = wait_until(
            lambda: (
                speed(**period, group_by="rep")["overall"]["sales_cycle_days"]["count"] == 1
                and speed(**period, group_by="rep")
            )
        )
        assert then["overall"]["to_first_webhook_seconds"]["count"] == 0
        assert then["overall"]["sla_compliance"] is None, "a lead never handed off is no SLA miss"
        # Dana, handed nothing in those days, is listed with no hand-offs (e6c2a6f); the sales
        # cycle is the null group's
        idle = [r for r in then["rows"] if r["group"] is not None]
        assert [(r["name"], r["hand_offs"], r["sales_cycle_days"]["count"]) for r in idle] == [("Dana", 0, 0)]
        assert then["rows"][-1]["group"] is None, "its sales cycle is no rep's"
