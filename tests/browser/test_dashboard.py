"""The dashboard in headless Chromium: it shows nothing until given the viewer token, then its
charts show the numbers the API returns, filters apply, it refreshes by itself; a screenshot
is kept in tests/artifacts."""

import uuid
from datetime import UTC, datetime, timedelta

import httpx
from playwright.async_api import Browser

from services.metrics.app import create_app
from services.metrics.config import MetricsSettings
from shared import topics
from shared.events import LEAD_CLASSIFIED, OUTCOME_RECORDED, LeadClassified, OutcomeRecorded
from shared.kafka import Publisher
from tests.conftest import ADMIN, ARTIFACTS, VIEWER, Servers, eventually, serving
from tests.helpers import lead_captured
from tests.metrics.journeys import topic_of


async def test_the_dashboard_draws_what_the_api_returns(servers: Servers, browser: Browser) -> None:
    channel = f"dash_{uuid.uuid4().hex[:6]}"
    start = datetime.now(UTC) - timedelta(days=3)
    messages = []
    for index, stage in enumerate(["lead"] * 6 + ["mql"] * 3 + ["sql"] * 2 + ["customer"]):
        captured = lead_captured(channel=channel, captured_at=start.isoformat())
        payload = LeadClassified(score=40 + index, temperature="warm", stage=stage, rules_version=1)
        classified = captured.follow_up(LEAD_CLASSIFIED, "scoring", payload)
        key = str(captured.lead_id).encode()
        messages += [
            (topics.LEAD_EVENTS, key, captured.to_bytes()),
            (topics.LEAD_CLASSIFICATIONS, key, classified.to_bytes()),
        ]
    publisher = Publisher(servers.bootstrap, "test")
    await publisher.publish(messages)
    await publisher.stop()
    async with (
        serving(create_app(servers.settings(MetricsSettings))) as url,
        httpx.AsyncClient(base_url=url, headers=VIEWER) as api,
    ):

        async def settled() -> dict | None:
            body = (await api.get("/v1/funnel", params={"channel": channel})).json()
            return body if body["total"] == 12 else None

        funnel = await eventually(settled, timeout=30)
        today = datetime.now(UTC).date()
        spent = {"period_start": str(today - timedelta(days=20)), "period_end": str(today), "amount": 600}
        spent |= {"category": "marketing", "channel": "ad"}  # and no customer came by ads
        assert (await api.post("/v1/spend", json=spent, headers=ADMIN)).status_code == 201
        page = await browser.new_page(viewport={"width": 1280, "height": 900})
        await page.goto(f"{url}/dashboard")
        await page.wait_for_selector("#sign-in:not([hidden])")
        asked = await page.text_content("#sign-in-message")
        before_sign_in = await page.eval_on_selector_all("#funnel rect", "rects => rects.length")
        await page.fill("#token", "not-the-token")
        await page.click("#sign-in button[type=submit]")
        await page.wait_for_function(
            "document.getElementById('sign-in-message').textContent.includes('not accepted')"
        )
        await page.fill("#token", VIEWER["Authorization"].removeprefix("Bearer "))
        await page.click("#sign-in button[type=submit]")
        await page.wait_for_function("Number(document.body.dataset.refreshed || 0) > 0")
        sign_in_shown = await page.is_visible("#sign-in")
        ads = await page.eval_on_selector_all(
            "#money text.value[data-name=ad], #money-table tr", "nodes => nodes.map(n => n.textContent)"
        )
        await page.fill("input[name=channel]", channel)
        refreshed = int(await page.evaluate("document.body.dataset.refreshed || 0"))
        await page.click("#filters button[type=submit]")
        await page.wait_for_function(f"Number(document.body.dataset.refreshed || 0) > {refreshed}")
        drawn = await page.eval_on_selector_all(
            "#funnel rect", "rects => rects.map(r => [r.dataset.name, Number(r.dataset.value)])"
        )
        overall = await page.text_content("#overall")
        rows = await page.eval_on_selector_all(
            "#money-table tbody tr", "rows => rows.map(r => r.textContent)"
        )
        speed_of = await page.text_content("#speed-of")
        currency = await page.text_content("#currency")
        health = await page.text_content("#health")
        speed = await page.text_content("#speed")
        proposals = await page.text_content("#proposals")
        ARTIFACTS.mkdir(exist_ok=True)
        await page.screenshot(path=str(ARTIFACTS / "dashboard.png"), full_page=True)
        await page.close()
    assert asked is not None and "viewer token is needed" in asked and before_sign_in == 0
    assert not sign_in_shown, "signed in: the form and its old message are gone"
    assert drawn == [[s["stage"], s["count"]] for s in funnel["stages"]]
    assert drawn[0] == ["lead", 12] and drawn[-1] == ["customer", 1]
    # the share runs from the first stage shown to the last (a total also counts suspects)
    assert overall is not None and "12 leads" in overall and "Lead → Customer 8.3%" in overall
    # a channel that spent and won nobody has no CAC: it read 0.00, as if it cost nothing
    assert ads[0] == "no customers (600.00 spent)" and "Advertisingno customers0–" in ads
    assert f"{channel}no spend entered1–" in ads, "a customer won with no spend entered is no free one"
    # the channel filter narrows CAC and speed-to-lead too (it narrowed the funnel only)
    assert rows == [f"{channel}no spend entered1–"] and speed_of == f" ({channel})"
    # the report's currency, and that the others are left out, not converted
    assert currency is not None and currency.startswith("Every amount is in USD. Amounts in other currencies")
    assert health is not None and "metrics lag" in health
    assert speed is not None and "Acknowledged within 15 min" in speed and "Waiting, inside the SLA" in speed
    assert proposals is not None and "Stale: no answer in time" in proposals
    assert (ARTIFACTS / "dashboard.png").stat().st_size > 10_000


async def test_filters_the_api_refuses_grey_the_figures_and_say_why(
    servers: Servers, browser: Browser
) -> None:
    """A period ending before it starts left the figures of the last good filters on screen, with
    "update failed: /v1/funnel: 422" in the header (found by an outside review)."""
    async with serving(create_app(servers.settings(MetricsSettings))) as url:
        page = await browser.new_page(viewport={"width": 1280, "height": 900})
        await page.goto(f"{url}/dashboard")
        await page.fill("#token", VIEWER["Authorization"].removeprefix("Bearer "))
        await page.click("#sign-in button[type=submit]")
        await page.wait_for_function("Number(document.body.dataset.refreshed || 0) > 0")
        fresh = await page.evaluate("document.body.classList.contains('stale')")
        await page.fill("input[name=from]", "2026-12-31")
        await page.fill("input[name=to]", "2026-11-01")
        refreshed = int(await page.evaluate("document.body.dataset.refreshed || 0"))
        await page.click("#filters button[type=submit]")
        await page.wait_for_function(f"Number(document.body.dataset.refreshed || 0) > {refreshed}")
        stale = await page.evaluate("document.body.classList.contains('stale')")
        said = await page.text_content("#updated")
        await page.close()
    assert not fresh and stale
    assert said == "not updated, the figures shown are older: to: must be after `from`"


async def test_a_period_given_only_one_end_keeps_the_money_card_fresh(
    servers: Servers, browser: Browser
) -> None:
    """Only "To", two years back: the money card filled in its own "From" (a year before today),
    asked for a period ending before it starts, and greyed the whole page saying "to: must be
    after `from`" of a field the user never filled (found by a review). So did a "From" alone
    past tomorrow. Its own end is now taken from the one chosen."""
    async with serving(create_app(servers.settings(MetricsSettings))) as url:
        page = await browser.new_page(viewport={"width": 1280, "height": 900})
        await page.goto(f"{url}/dashboard")
        await page.fill("#token", VIEWER["Authorization"].removeprefix("Bearer "))
        await page.click("#sign-in button[type=submit]")
        await page.wait_for_function("Number(document.body.dataset.refreshed || 0) > 0")
        stale = []
        for field, value in (("to", "2020-03-31"), ("from", "2099-01-01")):
            await page.fill("input[name=from]", "")
            await page.fill("input[name=to]", "")
            await page.fill(f"input[name={field}]", value)
            refreshed = int(await page.evaluate("document.body.dataset.refreshed || 0"))
            await page.click("#filters button[type=submit]")
            await page.wait_for_function(f"Number(document.body.dataset.refreshed || 0) > {refreshed}")
            stale.append((field, await page.evaluate("document.body.classList.contains('stale')")))
        await page.close()
    assert stale == [("to", False), ("from", False)]


async def test_the_money_card_says_which_days_its_cac_covers_and_that_ltv_is_all_time(
    servers: Servers, browser: Browser
) -> None:
    """The card put the CAC of the period (the last twelve months unless one is chosen) beside
    an LTV of all time under one heading, "CAC and LTV by channel", and an LTV:CAC of figures
    of different spans read as one (found by a review). It says the days of each."""
    async with serving(create_app(servers.settings(MetricsSettings))) as url:
        page = await browser.new_page(viewport={"width": 1280, "height": 900})
        await page.goto(f"{url}/dashboard")
        await page.fill("#token", VIEWER["Authorization"].removeprefix("Bearer "))
        await page.click("#sign-in button[type=submit]")
        await page.wait_for_function("Number(document.body.dataset.refreshed || 0) > 0")
        shown = [await page.text_content("#money-period")]
        await page.fill("input[name=from]", "2026-01-01")
        await page.fill("input[name=to]", "2026-03-31")
        refreshed = int(await page.evaluate("document.body.dataset.refreshed || 0"))
        await page.click("#filters button[type=submit]")
        await page.wait_for_function(f"Number(document.body.dataset.refreshed || 0) > {refreshed}")
        shown.append(await page.text_content("#money-period"))
        today = await page.evaluate("new Date().toLocaleDateString('en')")
        await page.close()
    assert shown[0].startswith("CAC of the customers won ") and shown[0].endswith(
        f" – {today}, whenever they were captured; LTV over all time"
    ), shown[0]
    assert (
        shown[1]
        == "CAC of the customers won 1/1/2026 – 3/31/2026, whenever they were captured; LTV over all time"
    )


async def test_spend_entered_without_a_channel_is_its_own_row_not_every_channels(
    servers: Servers, browser: Browser
) -> None:
    """CAC's group null (spend entered without a channel: "in the row without one") was drawn
    as "all", so 1,000 of general spend read "all: no customers" beside a channel's customers,
    as if every channel together had won nobody (found by an outside review)."""
    today = datetime.now(UTC).date()
    spent = {"period_start": str(today - timedelta(days=10)), "period_end": str(today), "amount": 1000}
    async with (
        serving(create_app(servers.settings(MetricsSettings))) as url,
        httpx.AsyncClient(base_url=url, headers=ADMIN) as api,
    ):
        assert (await api.post("/v1/spend", json=spent | {"category": "marketing"})).status_code == 201
        page = await browser.new_page(viewport={"width": 1280, "height": 900})
        await page.goto(f"{url}/dashboard")
        await page.fill("#token", VIEWER["Authorization"].removeprefix("Bearer "))
        await page.click("#sign-in button[type=submit]")
        await page.wait_for_function("Number(document.body.dataset.refreshed || 0) > 0")
        rows = await page.eval_on_selector_all(
            "#money-table tbody tr", "rows => rows.map(r => [...r.cells].map(c => c.textContent))"
        )
        await page.close()
    # and they are shared by every channel: no channel that spent and won nobody (found by a review)
    assert ["Shared costs (no channel)", "1,000.00 spent, in the CAC of all channels", "–", "–"] in rows
    assert not [row for row in rows if row[0] in ("all", "no channel")]


async def test_a_channels_customers_of_a_month_with_no_spend_entered_leave_its_cac_unknown(
    servers: Servers, browser: Browser
) -> None:
    """Nine customers by content in May 2024, before anyone entered spend, and one in March 2026,
    when 1,000 was: the CAC card summed the months and read a CAC of 100.00, the nine counted as
    free (found by a review). It says spend is missing for some months instead."""
    messages = []
    for on in [datetime(2024, 5, 2, 10, tzinfo=UTC)] * 9 + [datetime(2026, 3, 5, 10, tzinfo=UTC)]:
        captured = lead_captured(channel="content", captured_at=(on - timedelta(days=5)).isoformat())
        sale = OutcomeRecorded(outcome_id=uuid.uuid4(), outcome="won", occurred_at=on, amount=100.0)
        won = captured.follow_up(OUTCOME_RECORDED, "ingest", sale).model_copy(update={"occurred_at": on})
        messages += [(topic_of(e), str(e.lead_id).encode(), e.to_bytes()) for e in (captured, won)]
    publisher = Publisher(servers.bootstrap, "test")
    await publisher.publish(messages)
    await publisher.stop()
    march = {"period_start": "2026-03-01", "period_end": "2026-03-31", "category": "marketing"}
    period = {"from": "2024-01-01", "to": "2026-06-14"}
    async with (
        serving(create_app(servers.settings(MetricsSettings))) as url,
        httpx.AsyncClient(base_url=url, headers=ADMIN) as api,
    ):
        entered = await api.post("/v1/spend", json=march | {"amount": 1000, "channel": "content"})
        assert entered.status_code == 201, entered.text

        async def counted() -> bool:
            body = (await api.get("/v1/cac", params=period | {"group_by": "channel"})).json()
            return sum(row["customers"] for row in body["rows"] if row["group"] == "content") == 10

        await eventually(counted, timeout=30)
        page = await browser.new_page(viewport={"width": 1280, "height": 900})
        await page.goto(f"{url}/dashboard")
        await page.fill("#token", VIEWER["Authorization"].removeprefix("Bearer "))
        await page.click("#sign-in button[type=submit]")
        await page.wait_for_function("Number(document.body.dataset.refreshed || 0) > 0")
        await page.fill("input[name=from]", period["from"])
        await page.fill("input[name=to]", period["to"])
        refreshed = int(await page.evaluate("document.body.dataset.refreshed || 0"))
        await page.click("#filters button[type=submit]")
        await page.wait_for_function(f"Number(document.body.dataset.refreshed || 0) > {refreshed}")
        rows = await page.eval_on_selector_all(
            "#money-table tbody tr", "rows => rows.map(r => [...r.cells].map(c => c.textContent))"
        )
        bar = await page.text_content("#money text.value[data-name=content]")
        await page.close()
    assert ["Content", "spend missing for some months", "10", "100.00"] in rows, rows
    assert bar == "spend missing for some months"


async def test_the_signed_in_dashboard_logs_no_error_in_the_console(
    servers: Servers, browser: Browser
) -> None:
    """Every load logged "Failed to load resource: the server responded with a status of 404":
    the browser's own request for /favicon.ico, which the page named none for (found by an
    outside review)."""
    async with serving(create_app(servers.settings(MetricsSettings))) as url:
        page = await browser.new_page(viewport={"width": 1280, "height": 900})
        errors: list[str] = []
        page.on("console", lambda message: errors.append(message.text) if message.type == "error" else None)
        failed: list[str] = []
        page.on("response", lambda response: failed.append(response.url) if response.status >= 400 else None)
        await page.goto(f"{url}/dashboard")
        await page.fill("#token", VIEWER["Authorization"].removeprefix("Bearer "))
        await page.click("#sign-in button[type=submit]")
        await page.wait_for_function("Number(document.body.dataset.refreshed || 0) > 1", timeout=15_000)
        await page.close()
    assert errors == [] and failed == []
