"""The dashboard's speed card lists each rep by name, measured on the hand-offs they got (a
sales manager read the API's rows of rep ids, and the page had none): their acknowledgements,
hand-off → acknowledged p50 and share within the SLA, as GET /v1/speed-to-lead?group_by=rep
says; hidden with a channel chosen, as that report has no channel filter."""

import uuid
from datetime import UTC, datetime, timedelta

import httpx
from playwright.async_api import Browser

from services.metrics.app import create_app
from services.metrics.config import MetricsSettings
from shared import topics
from shared.events import LEAD_ACKNOWLEDGED, LEAD_ASSIGNED, Envelope
from shared.kafka import Publisher
from tests.conftest import VIEWER, Servers, eventually, serving
from tests.helpers import lead_captured


def nurture_event(lead: Envelope, kind: str, data: dict[str, str | float]) -> tuple[str, bytes, bytes]:
    event = Envelope(
        type=kind, lead_id=lead.lead_id, correlation_id=lead.correlation_id, producer="nurture", data=data
    )
    return topics.TOUCH_EVENTS, str(lead.lead_id).encode(), event.to_bytes()


async def test_the_speed_card_lists_each_rep_by_name(servers: Servers, browser: Browser) -> None:
    rep, name = uuid.uuid4(), f"Aigerim {uuid.uuid4().hex[:4]}"
    given = datetime.now(UTC) - timedelta(days=2)
    lead = lead_captured(channel="web_form", captured_at=given.isoformat())
    acknowledged = given + timedelta(minutes=4)
    messages = [
        (topics.LEAD_EVENTS, str(lead.lead_id).encode(), lead.to_bytes()),
        nurture_event(
            lead,
            LEAD_ASSIGNED,
            {"rep_id": str(rep), "rep_name": name, "temperature": "hot", "assigned_at": given.isoformat()},
        ),
        nurture_event(
            lead,
            LEAD_ACKNOWLEDGED,
            {"rep_id": str(rep), "acknowledged_at": acknowledged.isoformat(), "seconds_to_acknowledge": 240},
        ),
    ]
    publisher = Publisher(servers.bootstrap, "test")
    await publisher.publish(messages)
    await publisher.stop()
    async with (
        serving(create_app(servers.settings(MetricsSettings))) as url,
        httpx.AsyncClient(base_url=url, headers=VIEWER) as api,
    ):

        async def named() -> bool:
            rows = (await api.get("/v1/speed-to-lead", params={"group_by": "rep"})).json()["rows"]
            return any(r["name"] == name and r["to_acknowledgement_seconds"]["count"] == 1 for r in rows)

        await eventually(named, timeout=30)
        page = await browser.new_page(viewport={"width": 1280, "height": 900})
        await page.goto(f"{url}/dashboard")
        await page.fill("#token", VIEWER["Authorization"].removeprefix("Bearer "))
        await page.click("#sign-in button[type=submit]")
        await page.wait_for_function("Number(document.body.dataset.refreshed || 0) > 0")
        rows = await page.eval_on_selector_all(
            "#reps-table tbody tr", "rows => rows.map(r => [...r.cells].map(c => c.textContent))"
        )
        shown = await page.is_visible("#reps-table")
        await page.fill("input[name=channel]", "web_form")
        refreshed = int(await page.evaluate("document.body.dataset.refreshed || 0"))
        await page.click("#filters button[type=submit]")
        await page.wait_for_function(f"Number(document.body.dataset.refreshed || 0) > {refreshed}")
        shown_with_a_channel = await page.is_visible("#reps-table")
        await page.close()
    assert shown and not shown_with_a_channel
    [row] = [r for r in rows if r[0] == name]
    assert (row[1], row[3], row[4]) == ("1", "100.0%", "0"), row
    assert abs(float(row[2].removesuffix(" s")) - 240) <= 2.4, "4 minutes, within the histograms' 1%"
