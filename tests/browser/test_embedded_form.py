"""A source's form snippet (GET /v1/sources/{id}/embed) pasted as it is into a landing page on
another origin, filled in and sent by a real headless Chromium: the lead arrives with the page's
UTM tags, the form's language and the visitor's consent, and the visitor lands on the thanks page."""

import asyncio
import uuid
from typing import Any

import httpx
from fastapi import FastAPI
from fastapi.responses import HTMLResponse
from playwright.async_api import Browser, Page

from services.ingest.app import create_app
from services.ingest.config import IngestSettings
from tests.conftest import ADMIN, Servers, eventually, serving


def site_with(snippet: dict[str, str]) -> FastAPI:
    """A marketing site whose page holds whatever snippet it was given (set once known)."""
    site = FastAPI()

    @site.get("/promo", response_class=HTMLResponse)
    def promo() -> str:
        return f'<!doctype html><html lang="ru"><meta charset="utf-8"><title>Акция</title>{snippet["html"]}'

    @site.get("/thanks", response_class=HTMLResponse)
    def thanks() -> str:
        return "<!doctype html><meta charset=utf-8><h1>Спасибо!</h1>"

    return site


async def test_a_pasted_snippet_brings_the_visitors_lead_with_the_pages_utm_tags(
    servers: Servers, browser: Browser
) -> None:
    snippet = {"html": ""}
    app = create_app(servers.settings(IngestSettings))
    async with serving(app) as ingest_url, httpx.AsyncClient(base_url=ingest_url, headers=ADMIN) as admin:
        async with serving(site_with(snippet)) as site_url:
            source = (
                await admin.post(
                    "/v1/sources",
                    json={
                        "name": "Promo",
                        "channel": "landing_page",
                        "allowed_origins": [site_url],
                        "redirect_url": f"{site_url}/thanks",
                        "required_fields": ["phone"],
                    },
                )
            ).json()
            snippet["html"] = (await admin.get(f"/v1/sources/{source['id']}/embed?language=ru")).text
            page = await browser.new_page()
            await page.goto(f"{site_url}/promo?utm_source=instagram&utm_campaign=winter")
            honeypot = await page.locator("input[name=_hp]").bounding_box()
            assert honeypot is not None and honeypot["x"] < 0, "off-screen, out of the visitor's way"
            await page.get_by_label("Имя", exact=True).fill("Айгерим")
            await page.get_by_label("Телефон", exact=True).fill("8 701 555 12 34")
            await page.get_by_label("Я согласен").check()
            await page.get_by_role("button", name="Отправить").click()
            await page.wait_for_url(f"{site_url}/thanks?lead_id=*")
            lead_id = httpx.URL(page.url).params["lead_id"]
        lead = (await admin.get(f"/v1/leads/{lead_id}")).json()

    assert lead["phone"] == "+77015551234"
    attributes = lead["attributes"]
    assert attributes["first_name"] == "Айгерим" and attributes["consent"] is True
    assert attributes["language"] == "ru"
    assert attributes["utm"] == {"source": "instagram", "campaign": "winter"}
    assert attributes["page_url"] == f"{site_url}/promo?utm_source=instagram&utm_campaign=winter"


async def test_a_pasted_snippet_will_not_send_without_a_field_the_source_requires(
    servers: Servers, browser: Browser
) -> None:
    """The browser asks for the phone the source requires before anything is sent."""
    snippet = {"html": ""}
    app = create_app(servers.settings(IngestSettings))
    async with (
        serving(app) as ingest_url,
        httpx.AsyncClient(base_url=ingest_url, headers=ADMIN) as admin,
        serving(site_with(snippet)) as site_url,
    ):
        body = {"name": "Promo", "channel": "landing_page", "required_fields": ["phone"]}
        source = (await admin.post("/v1/sources", json=body)).json()
        snippet["html"] = (await admin.get(f"/v1/sources/{source['id']}/embed?language=kk")).text
        page = await browser.new_page()
        await page.goto(f"{site_url}/promo")
        await page.get_by_label("Аты", exact=True).fill("Айгерим")
        await page.get_by_role("button", name="Жіберу").click()
        missing = await page.eval_on_selector("input[name=phone]", "input => input.validity.valueMissing")
        assert missing is True
        assert page.url == f"{site_url}/promo", "nothing sent"


def slow(app: Any, posts: list[str], seconds: float) -> Any:
    """The app behind a slow network: each form post noted, and answered `seconds` late."""

    async def asgi(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "http" and scope["method"] == "POST" and scope["path"].startswith("/v1/forms/"):
            posts.append(scope["path"])
            await asyncio.sleep(seconds)
        await app(scope, receive, send)

    return asgi


async def test_a_pasted_snippet_sends_the_form_once_however_often_it_is_clicked_on_a_slow_network(
    servers: Servers, browser: Browser
) -> None:
    """Clicked three times while the post was on its way, the form went three times: three
    `form_submitted` on the lead, its score counted again each time. The button is disabled
    until the next page comes; Enter in a field sends nothing more either."""
    snippet, posts = {"html": ""}, []
    app = create_app(servers.settings(IngestSettings))
    async with (
        serving(slow(app, posts, seconds=3)) as ingest_url,
        httpx.AsyncClient(base_url=ingest_url, headers=ADMIN) as admin,
        serving(site_with(snippet)) as site_url,
    ):
        landing = {
            "name": "Promo",
            "channel": "landing_page",
            "allowed_origins": [f"{site_url}/promo"],
            "redirect_url": f"{site_url}/thanks",
        }
        source = (await admin.post("/v1/sources", json=landing)).json()
        snippet["html"] = (await admin.get(f"/v1/sources/{source['id']}/embed?language=kk")).text
        page = await browser.new_page()
        await page.goto(f"{site_url}/promo")
        name = page.get_by_label("Аты", exact=True)
        await name.fill("Dana")
        await page.get_by_label("Электрондық пошта", exact=True).fill(f"d-{uuid.uuid4().hex[:8]}@example.kz")
        box = await page.get_by_role("button", name="Жіберу").bounding_box()
        assert box is not None
        await name.press("Enter", no_wait_after=True)  # sent, and on its way for 3 s
        await eventually(lambda: len(posts) == 1)
        # The visitor clicks again, twice, then presses Enter once more (by the mouse and the
        # keyboard themselves: a page that is leaving runs no test's script).
        for _ in range(2):
            await page.mouse.click(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
            await asyncio.sleep(0.2)
        await page.keyboard.press("Enter")
        await page.wait_for_url(f"{site_url}/thanks?lead_id=*")
        lead_id = httpx.URL(page.url).params["lead_id"]
        await page.go_back()
        await page.wait_for_url(f"{site_url}/promo")
        assert await page.get_by_role("button", name="Жіберу").is_enabled(), "back, it may be sent again"
        lead = (await admin.get(f"/v1/leads/{lead_id}")).json()

    assert posts == [f"/v1/forms/{source['id']}"]
    assert lead["attributes"]["first_name"] == "Dana" and lead["history"] == []


def site_of_pages(snippet: dict[str, str]) -> FastAPI:
    """A site whose form sits on some pages: an ad leads to /promo (the form), the visitor reads
    /about (no form), then sends the form from /contact; or lands on /sale, which has none."""
    site = FastAPI()

    def page(title: str, body: str) -> str:
        return f'<!doctype html><html lang="ru"><meta charset="utf-8"><title>{title}</title>{body}'

    @site.get("/promo", response_class=HTMLResponse)
    def promo() -> str:
        return page("Акция", f'<a href="/about">О нас</a>{snippet["html"]}')

    @site.get("/sale", response_class=HTMLResponse)
    def sale() -> str:
        return page("Скидки", '<a href="/contact">Контакты</a>')

    @site.get("/about", response_class=HTMLResponse)
    def about() -> str:
        return page("О нас", '<a href="/contact">Контакты</a>')

    @site.get("/contact", response_class=HTMLResponse)
    def contact() -> str:
        return page("Контакты", snippet["html"])

    @site.get("/thanks", response_class=HTMLResponse)
    def thanks() -> str:
        return page("Спасибо", "<h1>Спасибо!</h1>")

    return site


async def test_the_landings_utm_tags_and_referrer_come_with_a_form_sent_from_another_page(
    servers: Servers, browser: Browser
) -> None:
    """Only the address of the page the form was sent from went with it: a visitor who came by
    an Instagram ad and read another page before writing to the company arrived with no UTM
    tags, and nothing said where they came from."""
    snippet: dict[str, str] = {"html": ""}
    app = create_app(servers.settings(IngestSettings))
    async with (
        serving(app) as ingest_url,
        httpx.AsyncClient(base_url=ingest_url, headers=ADMIN) as admin,
        serving(site_of_pages(snippet)) as site_url,
    ):
        landing = {"name": "Site", "channel": "landing_page", "redirect_url": f"{site_url}/thanks"}
        source = (await admin.post("/v1/sources", json=landing | {"allowed_origins": [site_url]})).json()
        snippet["html"] = (await admin.get(f"/v1/sources/{source['id']}/embed?language=ru")).text

        async def send_from_contact(page: Page, name: str) -> dict[str, Any]:
            await page.wait_for_url(f"{site_url}/contact")
            await page.get_by_label("Имя", exact=True).fill(name)
            await page.get_by_label("Электронная почта", exact=True).fill(
                f"{uuid.uuid4().hex[:8]}@example.kz"
            )
            await page.get_by_role("button", name="Отправить").click()
            await page.wait_for_url(f"{site_url}/thanks?lead_id=*")
            lead_id = httpx.URL(page.url).params["lead_id"]
            return dict((await admin.get(f"/v1/leads/{lead_id}")).json()["attributes"])

        ad = await browser.new_page()
        instagram = "https://l.instagram.com/"
        await ad.goto(
            f"{site_url}/promo?utm_source=instagram&utm_campaign=winter&fbclid=x1", referer=instagram
        )
        await ad.get_by_role("link", name="О нас").click()
        await ad.get_by_role("link", name="Контакты").click()
        came = await send_from_contact(ad, "Айгерим")
        # The same visitor comes back later by another ad, in the same tab: a new visit.
        await ad.goto(f"{site_url}/promo?utm_source=telegram", referer="https://t.me/")
        await ad.get_by_role("link", name="О нас").click()
        await ad.get_by_role("link", name="Контакты").click()
        again = await send_from_contact(ad, "Айгерим")

        # A landing without the form: the form's page knows it from its referrer, one step on.
        sale = await (await browser.new_context()).new_page()
        await sale.goto(
            f"{site_url}/sale?utm_source=google&utm_medium=cpc", referer="https://www.google.com/"
        )
        await sale.get_by_role("link", name="Контакты").click()
        searched = await send_from_contact(sale, "Ерлан")

    assert came["utm"] == {"source": "instagram", "campaign": "winter"}
    assert came["referrer"] == instagram and came["page_url"] == f"{site_url}/contact"
    assert again["utm"] == {"source": "telegram"} and again["referrer"] == "https://t.me/"
    assert searched["utm"] == {"source": "google", "medium": "cpc"}
    assert searched["referrer"] == f"{site_url}/sale?utm_source=google&utm_medium=cpc"


async def test_a_visitor_finds_the_sources_extra_required_fields_by_their_labels(
    servers: Servers, browser: Browser
) -> None:
    """The extra fields a source requires were labelled by their code name ("company_size"):
    a visitor now finds each by a label in the form's language."""
    snippet = {"html": ""}
    app = create_app(servers.settings(IngestSettings))
    async with (
        serving(app) as ingest_url,
        httpx.AsyncClient(base_url=ingest_url, headers=ADMIN) as admin,
        serving(site_with(snippet)) as site_url,
    ):
        body = {
            "name": "Astana expo landing",
            "channel": "landing_page",
            "redirect_url": f"{site_url}/thanks",
            "required_fields": ["phone", "city", "company_size"],
            "field_labels": {"company_size": {"ru": "Сколько у вас сотрудников?"}},
        }
        source = (await admin.post("/v1/sources", json=body)).json()
        snippet["html"] = (await admin.get(f"/v1/sources/{source['id']}/embed?language=ru")).text
        page = await browser.new_page()
        await page.goto(f"{site_url}/promo")
        await page.get_by_label("Телефон", exact=True).fill("8 701 555 12 35")
        await page.get_by_label("Город", exact=True).fill("Астана")
        await page.get_by_label("Сколько у вас сотрудников?", exact=True).fill("50-100")
        await page.get_by_role("button", name="Отправить").click()
        await page.wait_for_url(f"{site_url}/thanks?lead_id=*")
        lead = (await admin.get(f"/v1/leads/{httpx.URL(page.url).params['lead_id']}")).json()
    assert (lead["attributes"]["city"], lead["attributes"]["company_size"]) == ("Астана", "50-100")
