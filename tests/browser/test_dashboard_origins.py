"""The dashboard's leads by channel and campaign: the leads, MQLs, SQLs and customers won of each
channel and each campaign of the period, as the funnel by channel and by campaign counts them
(a marketer's review found no view of where leads came from)."""

import uuid

from playwright.async_api import Browser

from shared import topics
from shared.events import LEAD_CLASSIFIED, LeadClassified
from shared.kafka import Publisher
from tests.browser.dashboard_pages import LAPTOP, opened, sign_in
from tests.conftest import Servers
from tests.helpers import lead_captured


async def publish(servers: Servers, channel: str, campaigns: dict[str | None, list[str]]) -> None:
    """Leads of `channel`, per campaign, captured and classified at these stages."""
    messages = []
    for campaign, stages in campaigns.items():
        for stage in stages:
            captured = lead_captured(channel=channel, campaign=campaign)
            payload = LeadClassified(score=50, temperature="warm", stage=stage, rules_version=1)
            classified = captured.follow_up(LEAD_CLASSIFIED, "scoring", payload)
            key = str(captured.lead_id).encode()
            messages += [
                (topics.LEAD_EVENTS, key, captured.to_bytes()),
                (topics.LEAD_CLASSIFICATIONS, key, classified.to_bytes()),
            ]
    publisher = Publisher(servers.bootstrap, "test")
    await publisher.publish(messages)
    await publisher.stop()


async def test_the_leads_of_each_channel_and_campaign_by_stage(
    servers: Servers, dashboard: str, browser: Browser
) -> None:
    channel, spring = f"origin_{uuid.uuid4().hex[:6]}", f"spring_{uuid.uuid4().hex[:6]}"
    await publish(servers, channel, {spring: ["lead", "mql", "sql", "customer"], None: ["lead", "mql"]})
    page = await opened(browser, dashboard, LAPTOP)
    await sign_in(page)
    await page.fill("input[name=channel]", channel)
    await page.click("#filters button[type=submit]")
    await page.wait_for_function(
        "(document.querySelector('#channels-table tbody tr td')?.textContent || '').startsWith('origin_')"
        " && document.querySelector('#channels-table tbody tr td:nth-child(2)').textContent === '6'",
        timeout=30_000,
    )
    read = "rows => rows.map(r => [...r.cells].map(c => c.textContent))"
    channels = await page.eval_on_selector_all("#channels-table tbody tr", read)
    campaigns = await page.eval_on_selector_all("#campaigns-table tbody tr", read)
    assert channels == [[channel, "6", "4", "2", "1"]]  # leads, MQL, SQL, won
    assert campaigns == [[spring, "4", "3", "2", "1"], ["no campaign", "2", "1", "0", "0"]]
