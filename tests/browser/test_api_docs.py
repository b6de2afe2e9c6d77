"""The API's pages, /docs and /redoc, opened in a real Chromium that may reach nothing but the
service: a machine without the internet (a laptop on a train, a closed network) gets them whole."""

from urllib.parse import urlsplit

from playwright.async_api import Browser, Page, Route

from services.scoring.app import create_app
from services.scoring.config import ScoringSettings
from tests.conftest import Servers, serving


async def offline_page(browser: Browser, origin: str) -> tuple[Page, list[tuple[str, str]]]:
    """A page whose requests anywhere but `origin` fail, as on a machine with no internet;
    returns it and what it tried to fetch elsewhere (the kind of resource, the address)."""
    page = await browser.new_page()
    elsewhere: list[tuple[str, str]] = []

    async def only_the_service(route: Route) -> None:
        url = route.request.url
        if urlsplit(url).netloc == urlsplit(origin).netloc:
            await route.continue_()
        else:
            elsewhere.append((route.request.resource_type, url))
            await route.abort("internetdisconnected")

    await page.route("**/*", only_the_service)
    return page, elsewhere


async def test_swagger_ui_shows_the_api_with_no_internet(servers: Servers, browser: Browser) -> None:
    async with serving(create_app(servers.settings(ScoringSettings))) as url:
        page, elsewhere = await offline_page(browser, url)
        await page.goto(f"{url}/docs?utm_source=newsletter")
        title = page.locator(".swagger-ui .info .title")
        await title.wait_for(timeout=15_000)
        assert "Leadflow" in await title.inner_text()
        await page.locator(".opblock-summary-path", has_text="/v1/leads/{lead_id}").first.wait_for()
        assert elsewhere == []


async def test_redoc_shows_the_api_with_no_internet(servers: Servers, browser: Browser) -> None:
    async with serving(create_app(servers.settings(ScoringSettings))) as url:
        page, elsewhere = await offline_page(browser, url)
        await page.goto(f"{url}/redoc")
        heading = page.locator("h1", has_text="Leadflow")
        await heading.wait_for(timeout=15_000)
        await page.get_by_text("/v1/leads/{lead_id}").first.wait_for()
        # ReDoc's own footer links its maker's logo; the page needs nothing else from outside
        assert [kind for kind, _ in elsewhere if kind != "image"] == []
