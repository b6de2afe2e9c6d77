"""A chat widget on a landing page, in a real headless Chromium: its script posts the chat and
the lead with the source's `capture` key (the README: such a key may sit in a web page)."""

import uuid

import httpx
from playwright.async_api import Browser

from services.ingest.app import create_app
from services.ingest.config import IngestSettings
from tests.browser.test_landing_page_form import landing_page
from tests.conftest import ADMIN, Servers, serving

POSTING = """async ([url, key, body]) => {
    try {
        const r = await fetch(url, {method: "POST", body: JSON.stringify(body),
                                    headers: {"Content-Type": "application/json", "X-Source-Key": key}});
        const answer = await r.json();
        return [r.status, answer.errors ? answer.errors.map((e) => e.field).join() : answer.status];
    } catch (e) { return [e.name + ": " + e.message]; }
}"""


async def test_a_chat_widget_posts_with_its_capture_key_from_the_sources_origin_only(
    servers: Servers, browser: Browser
) -> None:
    app = create_app(servers.settings(IngestSettings))
    async with serving(app) as ingest_url, serving(landing_page("unused")) as site_url:
        async with httpx.AsyncClient(base_url=ingest_url, headers=ADMIN) as admin:
            widget = {"name": "Chat", "channel": "chatbot", "allowed_origins": [site_url]}
            source = (await admin.post("/v1/sources", json=widget)).json()
        chat = {
            "conversation_id": f"widget-{uuid.uuid4().hex[:8]}",
            "message_id": "1",
            "contact": {"phone": "8 701 234 56 78", "first_name": "Дина"},
            "text": "Сәлеметсіз бе! Бүгін қоңырау шалыңызшы 🙏",
            "intent": "callback_request",
        }
        messages, leads = f"{ingest_url}/v1/chatbots/{source['id']}/messages", f"{ingest_url}/v1/leads"
        page = await browser.new_page()
        await page.goto(f"{site_url}/thanks")
        said = await page.evaluate(POSTING, [messages, source["key"], chat])
        wrong = await page.evaluate(POSTING, [leads, source["key"], {"email": "нет"}])
        lead = await page.evaluate(POSTING, [leads, source["key"], {"email": "dina@example.kz"}])

        elsewhere = await browser.new_page()  # the same key, copied to a page of another origin
        await elsewhere.goto(f"{site_url.replace('127.0.0.1', 'localhost')}/thanks")
        copied = await elsewhere.evaluate(POSTING, [leads, source["key"], {"email": "copied@example.kz"}])

    assert said == [202, "recorded"]
    assert wrong == [422, "email"]
    assert lead == [202, "accepted"]
    assert copied == ["TypeError: Failed to fetch"]  # the preflight is refused: nothing was sent
