"""A landing page's plain HTML form, filled in and submitted by a real headless Chromium
(Debian's package, driven by Playwright), and a fetch() from the page's origin (CORS)."""

import uuid
from typing import Any

import httpx
from fastapi import FastAPI
from fastapi.responses import HTMLResponse
from playwright.async_api import Browser
from sqlalchemy import text

from services.ingest.app import create_app
from services.ingest.config import IngestSettings
from tests.conftest import ADMIN, ARTIFACTS, Servers, eventually, serving


def landing_page(form_url: str) -> FastAPI:
    """A marketing site: the page with the form, and the thank-you page the form redirects to."""
    site = FastAPI()

    @site.get("/spring", response_class=HTMLResponse)
    def spring() -> str:
        return spring_page(form_url)

    @site.get("/private", response_class=HTMLResponse)
    def private() -> HTMLResponse:
        """The same page on a site that tells other sites nothing of where its visitors were."""
        return HTMLResponse(spring_page(form_url), headers={"Referrer-Policy": "no-referrer"})

    @site.get("/thanks", response_class=HTMLResponse)
    def thanks() -> str:
        return "<!doctype html><meta charset=utf-8><h1>Рахмет!</h1>"

    return site


def spring_page(form_url: str) -> str:
    return f"""<!doctype html><html lang="kk"><meta charset="utf-8"><title>Көктем</title>
        <form method="post" action="{form_url}">
          <input name="name" placeholder="Аты-жөні">
          <input name="email" type="email">
          <input name="phone">
          <select name="timeframe">
            <option value="immediately">Қазір</option><option value="none">Жай</option>
          </select>
          <input name="consent" type="checkbox">
          <input name="_hp" style="display:none" tabindex="-1" autocomplete="off">
          <input name="page_url" type="hidden">
          <button type="submit">Жіберу</button>
        </form>
        <script>
          // Browsers send only the origin as Referer across sites, so the page passes its own
          // URL (and with it the UTM tags) as a hidden field, as the README's snippet does.
          document.querySelector("[name=page_url]").value = location.href;
        </script>"""


async def test_html_form_submitted_by_a_browser_becomes_a_lead(servers: Servers, browser: Browser) -> None:
    app = create_app(servers.settings(IngestSettings))
    async with serving(app) as ingest_url, httpx.AsyncClient(base_url=ingest_url) as admin:
        async with serving(landing_page(f"{ingest_url}/v1/forms/SOURCE")) as site_url:
            source = (
                await admin.post(
                    "/v1/sources",
                    headers=ADMIN,
                    json={
                        "name": "Spring landing",
                        "channel": "landing_page",
                        "allowed_origins": [site_url],
                        "redirect_url": f"{site_url}/thanks",
                    },
                )
            ).json()
            source_id = source["id"]
            page = await browser.new_page()
            await page.route(
                "**/v1/forms/SOURCE",
                lambda route: route.continue_(url=f"{ingest_url}/v1/forms/{source_id}"),
            )
            email = f"browser-{uuid.uuid4().hex[:8]}@example.kz"
            await page.goto(f"{site_url}/spring?utm_source=instagram&utm_campaign=spring")
            await page.fill("input[name=name]", "Аружан Сейітқызы")
            await page.fill("input[name=email]", email)
            await page.check("input[name=consent]")
            await page.click("button[type=submit]")
            await page.wait_for_url(f"{site_url}/thanks?lead_id=*")
            ARTIFACTS.mkdir(exist_ok=True)
            await page.screenshot(path=str(ARTIFACTS / "landing-form-thanks.png"))
            lead_id = httpx.URL(page.url).params["lead_id"]

            in_page = await page.evaluate(
                """async (url) => {
                    const body = new URLSearchParams({email: "fetch-" + Date.now() + "@example.kz"});
                    const headers = {Accept: "application/json"};
                    const r = await fetch(url, {method: "POST", body, headers});
                    return [r.status, (await r.json()).status];
                }""",
                f"{ingest_url}/v1/forms/{source_id}",
            )
            assert in_page == [202, "accepted"]
        lead = (await admin.get(f"/v1/leads/{lead_id}", headers=ADMIN)).json()

    assert lead["email"] == email
    attributes = lead["attributes"]
    assert (attributes["first_name"], attributes["last_name"]) == ("Аружан", "Сейітқызы")
    assert attributes["timeframe"] == "immediately" and attributes["consent"] is True
    assert attributes["utm"] == {"source": "instagram", "campaign": "spring"}
    assert attributes["page_url"].endswith("/spring?utm_source=instagram&utm_campaign=spring")


async def test_a_page_that_withholds_its_origin_still_delivers_its_visitors_form(
    servers: Servers, browser: Browser
) -> None:
    """With `Referrer-Policy: no-referrer` Chromium posts the form with `Origin: null`: it was
    refused with a 403 the visitor saw as raw JSON, and the lead was lost."""
    app = create_app(servers.settings(IngestSettings))
    async with serving(app) as ingest_url, httpx.AsyncClient(base_url=ingest_url, headers=ADMIN) as admin:
        async with serving(landing_page(f"{ingest_url}/v1/forms/SOURCE")) as site_url:
            private = {
                "name": "Private landing",
                "channel": "landing_page",
                "allowed_origins": [site_url],
                "redirect_url": f"{site_url}/thanks",
            }
            source_id = (await admin.post("/v1/sources", json=private)).json()["id"]
            page = await browser.new_page()
            await page.route(
                "**/v1/forms/SOURCE",
                lambda route: route.continue_(url=f"{ingest_url}/v1/forms/{source_id}"),
            )
            origins: list[str | None] = []
            page.on(
                "request", lambda r: origins.append(r.headers.get("origin")) if r.method == "POST" else None
            )
            await page.goto(f"{site_url}/private?utm_source=telegram")
            await page.fill("input[name=name]", "Ерлан Нұрланұлы")
            await page.fill("input[name=phone]", "8 701 234 56 78")
            await page.click("button[type=submit]")
            await page.wait_for_url(f"{site_url}/thanks?lead_id=*", timeout=10_000)
            lead_id = httpx.URL(page.url).params["lead_id"]
        lead = (await admin.get(f"/v1/leads/{lead_id}")).json()

    assert origins == ["null"]
    assert lead["phone"] == "+77012345678" and lead["attributes"]["utm"] == {"source": "telegram"}


async def test_fetch_from_another_origin_is_blocked_by_cors_and_stores_nothing(
    servers: Servers, browser: Browser
) -> None:
    app = create_app(servers.settings(IngestSettings))
    email, answered = f"cors-{uuid.uuid4().hex[:8]}@example.kz", []
    async with serving(recording(app, answered)) as ingest_url, serving(landing_page("unused")) as site_url:
        async with httpx.AsyncClient(base_url=ingest_url) as admin:
            other = {
                "name": "Other",
                "channel": "landing_page",
                "allowed_origins": ["https://only.example.kz"],
            }
            source = (await admin.post("/v1/sources", headers=ADMIN, json=other)).json()
        page = await browser.new_page()
        console: list[str] = []
        page.on("console", lambda message: console.append(message.text))
        await page.goto(f"{site_url}/thanks")
        outcome = await page.evaluate(
            """async ([url, email]) => {
                try {
                    const r = await fetch(url, {method: "POST", body: new URLSearchParams({email}),
                                                headers: {Accept: "application/json"}});
                    return "read " + r.status;
                } catch (e) { return e.name + ": " + e.message; }
            }""",
            [f"{ingest_url}/v1/forms/{source['id']}", email],
        )
        assert outcome == "TypeError: Failed to fetch"  # all a page learns of a CORS refusal
        blocked = (
            f"from origin '{site_url}' has been blocked by CORS policy: No 'Access-Control-Allow-Origin'"
        )
        await eventually(lambda: any(blocked in line for line in console))
        # The browser hides why; ingest's own answer says it: the foreign origin, not a fault.
        assert [a for a in answered if a[1].startswith("/v1/forms/")] == [
            ("POST", f"/v1/forms/{source['id']}", 403)
        ]
        assert await stored_anywhere(app, email) == 0


def recording(app: FastAPI, answered: list[tuple[str, str, int]]) -> Any:
    """The app as served, noting the status of every HTTP answer it gives."""

    async def asgi(scope: dict[str, Any], receive: Any, send: Any) -> None:
        async def noting(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                answered.append((scope["method"], scope["path"], message["status"]))
            await send(message)

        await app(scope, receive, noting if scope["type"] == "http" else send)

    return asgi


async def stored_anywhere(app: FastAPI, email: str) -> int:
    """Rows in ingest's database that mention `email`: leads, spam and outbox."""
    queries = [
        "SELECT count(*) FROM leads WHERE email = :e",
        "SELECT count(*) FROM spam_submissions WHERE fields->>'email' = :e",
        "SELECT count(*) FROM outbox WHERE position(:e in convert_from(value, 'UTF8')) > 0",
    ]
    async with app.state.runtime.db.transaction() as session:
        return sum([(await session.execute(text(q), {"e": email})).scalar_one() for q in queries])


async def test_a_page_reads_why_its_fetch_was_refused_a_429_and_a_415_too(
    servers: Servers, browser: Browser
) -> None:
    """A landing page behind one NAT, over the IP's limit, and a developer posting JSON: the
    refusals carry the source's CORS headers, so the page reads the status, the reason and
    Retry-After instead of "Failed to fetch"."""
    settings = servers.settings(IngestSettings, rate_limit_per_ip="2/minute")
    async with serving(create_app(settings)) as ingest_url, serving(landing_page("unused")) as site_url:
        async with httpx.AsyncClient(base_url=ingest_url) as admin:
            landing = {"name": "NAT", "channel": "landing_page", "allowed_origins": [site_url]}
            source = (await admin.post("/v1/sources", headers=ADMIN, json=landing)).json()
        page = await browser.new_page()
        await page.goto(f"{site_url}/thanks")
        answers = await page.evaluate(
            """async (url) => {
                const read = async (body, type) => {
                    const headers = {Accept: "application/json"};
                    if (type) headers["Content-Type"] = type;
                    try {
                        const r = await fetch(url, {method: "POST", body, headers});
                        return [r.status, (await r.json()).title || "", r.headers.get("Retry-After")];
                    } catch (e) { return [e.name + ": " + e.message]; }
                };
                return [  // the posts count, the JSON post's preflight not: 2 of 2 after the second
                    await read(JSON.stringify({email: "json@example.kz"}), "application/json"),
                    await read(new URLSearchParams({email: "nat-1@example.kz"})),
                    await read(new URLSearchParams({email: "nat-2@example.kz"})),
                ];
            }""",
            f"{ingest_url}/v1/forms/{source['id']}",
        )
    unsupported, accepted, limited = answers
    assert unsupported == [
        415,
        "Post the form as application/x-www-form-urlencoded or multipart/form-data",
        None,
    ]
    assert accepted == [202, "", None]
    assert limited[:2] == [429, "Too many requests"] and 1 <= int(limited[2]) <= 60


async def test_a_page_reads_that_its_visitors_message_was_too_long(
    servers: Servers, browser: Browser
) -> None:
    """A body over the limit is refused before the form's source is known: the 413 is readable
    by the page all the same, so it can ask the visitor to shorten the message."""
    settings = servers.settings(IngestSettings, max_body_bytes=4096)
    async with serving(create_app(settings)) as ingest_url, serving(landing_page("unused")) as site_url:
        async with httpx.AsyncClient(base_url=ingest_url) as admin:
            landing = {"name": "Long", "channel": "landing_page", "allowed_origins": [site_url]}
            source = (await admin.post("/v1/sources", headers=ADMIN, json=landing)).json()
        page = await browser.new_page()
        await page.goto(f"{site_url}/thanks")
        answer = await page.evaluate(
            """async (url) => {
                const body = new URLSearchParams({email: "long@example.kz", message: "Сәлем! ".repeat(1000)});
                try {
                    const r = await fetch(url, {method: "POST", body, headers: {Accept: "application/json"}});
                    return [r.status, (await r.json()).title];
                } catch (e) { return [e.name + ": " + e.message]; }
            }""",
            f"{ingest_url}/v1/forms/{source['id']}",
        )
    assert answer == [413, "Request body is larger than 4096 bytes"]
