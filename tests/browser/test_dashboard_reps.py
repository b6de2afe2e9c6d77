"""The dashboard's speed card lists each rep by name, measured on the hand-offs they got (a
sales manager read the API's rows of rep ids, and the page had none): their acknowledgements,
hand-off → acknowledged p50 and share within the SLA, as GET /v1/speed-to-lead?group_by=rep
says; a rep handed nothing in the period is listed too, with 0 hand-offs and no timings, after
the others; hidden with a channel chosen, as that report has no channel filter."""

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

NOW = datetime(2033, 3, 20, 12, 0, tzinfo=UTC)  # the time metrics reads at


def nurture_event(lead: Envelope, kind: str, data: dict[str, str | float]) -> tuple[str, bytes, bytes]:
    event = Envelope(
        type=kind, lead_id=lead.lead_id, correlation_id=lead.correlation_id, producer="nurture", data=data
    )
    return topics.TOUCH_EVENTS, str(lead.lead_id).encode(), event.to_bytes()


def handed(rep: uuid.UUID, name: str, given: datetime) -> list[tuple[str, bytes, bytes]]:
    """A lead captured and handed to the rep at `given`, acknowledged four minutes later."""
    lead = lead_captured(channel="web_form", captured_at=given.isoformat())
    acknowledged = given + timedelta(minutes=4)
    return [
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


async def test_the_speed_card_lists_each_rep_by_name(servers: Servers, browser: Browser) -> None:
    rep, name = uuid.uuid4(), f"Aigerim {uuid.uuid4().hex[:4]}"
    idle, idle_name = uuid.uuid4(), f"Bolat {uuid.uuid4().hex[:4]}"  # handed nothing since 40 days
    given = NOW - timedelta(days=2)
    messages = [*handed(rep, name, given), *handed(idle, idle_name, given - timedelta(days=40))]
    publisher = Publisher(servers.bootstrap, "test")
    await publisher.publish(messages)
    await publisher.stop()
    async with (
        serving(create_app(servers.settings(MetricsSettings), clock=lambda: NOW)) as url,
        httpx.AsyncClient(base_url=url, headers=VIEWER) as api,
    ):

        async def named() -> bool:
            rows = (await api.get("/v1/speed-to-lead", params={"group_by": "rep"})).json()["rows"]
            counted = {r["name"]: r["to_acknowledgement_seconds"]["count"] for r in rows}
            return counted.get(name) == 1 and counted.get(idle_name) == 1

        await eventually(named, timeout=30)
        page = await browser.new_page(viewport={"width": 1280, "height": 900})
        await page.goto(f"{url}/dashboard")
        await page.fill("#token", VIEWER["Authorization"].removeprefix("Bearer "))
        await page.click("#sign-in button[type=submit]")
        await page.wait_for_function("Number(document.body.dataset.refreshed || 0) > 0")
        shown = await page.is_visible("#reps-table")
        # a period from the day before the hand-off: Bolat was handed nothing in it
        await page.fill("input[name=from]", (given - timedelta(days=1)).date().isoformat())
        await page.fill("input[name=to]", NOW.date().isoformat())
        refreshed = int(await page.evaluate("document.body.dataset.refreshed || 0"))
        await page.click("#filters button[type=submit]")
        await page.wait_for_function(f"Number(document.body.dataset.refreshed || 0) > {refreshed}")
        rows = await page.eval_on_selector_all(
            "#reps-table tbody tr", "rows => rows.map(r => [...r.cells].map(c => c.textContent))"
        )
        await page.fill("input[name=channel]", "web_form")
        refreshed = int(await page.evaluate("document.body.dataset.refreshed || 0"))
        await page.click("#filters button[type=submit]")
        await page.wait_for_function(f"Number(document.body.dataset.refreshed || 0) > {refreshed}")
        shown_with_a_channel = await page.is_visible("#reps-table")
        await page.close()
    assert shown and not shown_with_a_channel
    [row] = [r for r in rows if r[0] == name]
    assert (row[1], row[2], row[4], row[5]) == ("1", "1", "100.0%", "0"), row
    assert abs(float(row[3].removesuffix(" s")) - 240) <= 2.4, "4 minutes, within the histograms' 1%"
    named = [r[0] for r in rows]
    assert named.index(name) < named.index(idle_name), "the reps handed something first"
    assert rows[named.index(idle_name)][1:] == ["0", "0", "–", "–", "0"], rows
