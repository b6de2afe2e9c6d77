"""The app runs the SLA check itself, on the wall clock: a lead whose SLA has run out is
escalated to the other rep without anyone asking."""

import json
from datetime import timedelta

from services.nurture.app import create_app
from services.nurture.assignments import assign_leads
from services.nurture.config import NurtureSettings
from shared.events import utcnow
from tests.conftest import ADMIN, Servers, eventually, running
from tests.helpers import lead_classified
from tests.receiver import webhook_receiver

SLA = timedelta(minutes=10)


async def test_the_app_escalates_a_lead_whose_sla_has_run_out(servers: Servers) -> None:
    settings = servers.settings(
        NurtureSettings, sla_seconds=SLA.total_seconds(), sla_check_every_seconds=0.1, touches_enabled=False
    )
    app = create_app(settings)
    event = lead_classified("hot")
    with webhook_receiver() as first, webhook_receiver() as second:
        async with running(app) as client:
            for receiver in (first, second):
                body = {"name": "Rep", "webhook_url": receiver.url}
                assert (await client.post("/v1/reps", json=body, headers=ADMIN)).status_code == 201
            async with app.state.runtime.db.transaction() as session:
                await assign_leads(session, [event], settings, utcnow() - SLA - timedelta(seconds=1))
            await eventually(lambda: first.received() and second.received(), timeout=20)
        received = [json.loads(r.body) for r in (*first.received(), *second.received())]
    # (the first rep is also told the lead left them: `lead.unassigned`)
    hot = [body["data"] for body in received if body["type"] == "lead.hot"]
    handed, escalated = sorted(hot, key=_escalated)
    assert handed["lead_id"] == escalated["lead_id"] == str(event.lead_id)
    assert escalated["escalated_from"] == handed["rep_id"]


def _escalated(data: dict[str, object]) -> bool:
    return data["escalated_from"] is not None
