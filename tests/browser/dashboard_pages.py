"""The dashboard in a browser as its tests open it: a phone and a laptop, signed in or not."""

from pathlib import Path
from typing import Any

import axe_playwright_python
from playwright.async_api import Browser, Page

from shared import topics
from shared.events import LEAD_CLASSIFIED, LeadClassified
from shared.kafka import Publisher
from tests.conftest import VIEWER, Servers
from tests.helpers import lead_captured

PHONE: dict[str, Any] = {"viewport": {"width": 390, "height": 844}, "is_mobile": True, "has_touch": True}
LAPTOP: dict[str, Any] = {"viewport": {"width": 1366, "height": 768}}
AXE = Path(axe_playwright_python.__file__).with_name("axe.min.js")
WCAG_AA = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "wcag22aa", "best-practice"]


async def opened(browser: Browser, url: str, device: dict[str, Any]) -> Page:
    page = await (await browser.new_context(**device)).new_page()
    await page.goto(url)
    await page.wait_for_selector("#sign-in:not([hidden])")
    return page


async def sign_in(page: Page) -> None:
    await page.fill("#token", VIEWER["Authorization"].removeprefix("Bearer "))
    await page.press("#token", "Enter")
    await page.wait_for_function("Number(document.body.dataset.refreshed || 0) > 0")


async def refused_period(page: Page) -> None:
    """Filters the API refuses: the figures on screen are kept, marked as older."""
    await page.fill("input[name=from]", "2026-12-31")
    await page.fill("input[name=to]", "2026-11-01")
    await page.click("#filters button[type=submit]")
    await page.wait_for_function("document.body.classList.contains('stale')")


async def violations(page: Page) -> list[tuple[str, list[str]]]:
    """What axe-core (shipped by axe-playwright-python, nothing fetched) finds against WCAG 2.2 AA."""
    if not await page.evaluate("typeof axe !== 'undefined'"):
        await page.add_script_tag(path=str(AXE))
    found = await page.evaluate("tags => axe.run({runOnly: tags})", WCAG_AA)
    return [(v["id"], [n["target"] for n in v["nodes"]][:3]) for v in found["violations"]]


async def publish_leads(servers: Servers, channel: str, stages: list[str]) -> None:
    """Leads of `channel` captured and classified at these stages, as ingest and scoring publish them."""
    messages = []
    for stage in stages:
        captured = lead_captured(channel=channel)
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
