"""The dashboard in the visitor's language (English, Russian, Kazakh, Azerbaijani): taken from the
browser's preferred languages or the header's selector, which is remembered; every text in every
language and none of the English ones left on a page in another; axe and a phone's 390 px in each."""

import re
from datetime import UTC, datetime, timedelta
from typing import Any, get_args

import httpx
import pytest
from playwright.async_api import Browser, Page, expect

from services.metrics.dashboard import STATIC
from services.metrics.models import FUNNEL_STAGES
from shared.events.ingest import Channel
from tests.browser.dashboard_pages import LAPTOP, PHONE, opened, refused_period, sign_in, violations
from tests.conftest import ADMIN, ARTIFACTS

# the browser's locale: <html lang>, the funnel's heading, its table's headings and its stages
SEEN = {
    "kk-KZ": (
        "kk",
        "Сату воронкасы",
        ["Кезең", "Лидтер", "Алдыңғы кезеңнен"],
        ["Лид", "MQL", "SQL", "Мәміле", "Клиент"],
    ),
    "ru-RU": (
        "ru",
        "Воронка",
        ["Этап", "Лиды", "От предыдущего этапа"],
        ["Лид", "MQL", "SQL", "Сделка", "Клиент"],
    ),
    "az-AZ": (
        "az",
        "Satış hunisi",
        ["Mərhələ", "Lidlər", "Əvvəlki mərhələdən"],
        ["Lid", "MQL", "SQL", "Sövdələşmə", "Müştəri"],
    ),
    "de-DE": (
        "en",
        "Funnel",
        ["Stage", "Leads", "From the stage before"],
        ["Lead", "MQL", "SQL", "Opportunity", "Customer"],
    ),
}
BLANK = re.compile(r"\{\w+\}")  # filled in: {count}, {reason}
WORD = re.compile(r"[^\W\d_]{3,}")  # shorter ones ("to", "of") are in other words' company
# the page's text as a visitor and a screen reader get it: text, accessible names, placeholders;
# not the API's own words, marked lang="en" (its reasons, pipeline health's notes)
SHOWN = """() => {
    const parts = [document.title];
    const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
    while (walker.nextNode()) {
        const parent = walker.currentNode.parentElement;
        if (!parent.closest("script, [lang='en']")) parts.push(walker.currentNode.textContent);
    }
    for (const node of document.querySelectorAll("[aria-label], [placeholder]")) {
        parts.push(node.getAttribute("aria-label") || "", node.getAttribute("placeholder") || "");
    }
    return parts.join(" ");
}"""


# the channels of the longest names, and so many that the CAC chart's rows would be thin
LONGEST = ["existing_customer", "one_click_order", "callback_request", "landing_page", "store_visit"]
LONGEST += ["newsletter", "reactivation", "referral", "social", "live_chat", "web_form", "import"]
# a chart's names, bars and figures that leave it, a name or figure over a bar, a bar too thin to see
CROWDED = """charts => charts.flatMap((chart) => {
    const edge = chart.getBoundingClientRect();
    const boxes = [...chart.children].map((node) => [node, node.getBoundingClientRect()]);
    const bars = boxes.filter(([node]) => node.tagName === "rect").map(([, box]) => box);
    const over = (a, b) => a.left < b.right && b.left < a.right && a.top < b.bottom && b.top < a.bottom;
    return boxes.filter(([node, box]) => box.right > edge.right + 0.5 || box.bottom > edge.bottom + 0.5
        || (node.tagName === "text" && bars.some((bar) => over(box, bar))) || box.height < 1)
      .map(([node]) => node.textContent || node.dataset.name);
})"""
# amounts as each language writes them: 99 999,00 (a no-break space) or 99.999,00
AMOUNT = {"ru": r"\d\u00a0\d{3},\d\d\b", "kk": r"\d\u00a0\d{3},\d\d\b", "az": r"\d\.\d{3},\d\d\b"}


async def funnel_as_read(page: Page) -> tuple[str | None, str | None, list[str], list[str]]:
    table = "#funnel-table"
    return (
        await page.get_attribute("html", "lang"),
        await page.text_content("#funnel-card h2"),
        await page.eval_on_selector_all(f"{table} th", "cells => cells.map(c => c.textContent)"),
        await page.eval_on_selector_all(
            f"{table} tbody tr td:first-child", "cells => cells.map(c => c.textContent)"
        ),
    )


def words(texts: dict[str, Any]) -> set[str]:
    found: set[str] = set()
    for value in texts.values():
        if isinstance(value, dict):  # the stages, the channels
            found |= words(value)
        else:  # a blank ({time}) is no word shown
            found |= {word.casefold() for word in WORD.findall(BLANK.sub(" ", value))}
    return found


@pytest.mark.parametrize("locale", SEEN)
async def test_a_browser_in_kazakh_russian_or_azerbaijani_gets_the_dashboard_in_it_else_english(
    dashboard: str, browser: Browser, locale: str
) -> None:
    page = await opened(browser, dashboard, LAPTOP | {"locale": locale})
    await sign_in(page)
    read = await funnel_as_read(page)
    await page.context.close()
    assert read == SEEN[locale]


async def test_the_language_chosen_in_the_header_redraws_at_once_and_is_kept(
    dashboard: str, browser: Browser
) -> None:
    page = await opened(browser, dashboard, LAPTOP | {"locale": "de-DE"})
    await sign_in(page)
    await page.get_by_label("Update every 5 s").uncheck()
    await page.route("**/v1/**", lambda route: route.abort())  # drawn again from what is on screen
    await page.get_by_label("Language").select_option("Қазақша")
    await expect(page.locator("#funnel-table tbody td").first).to_have_text("Лид")
    chosen = await funnel_as_read(page)
    await page.unroute("**/v1/**")
    await page.reload()
    await page.wait_for_function("Number(document.body.dataset.refreshed || 0) > 0")
    reloaded = await funnel_as_read(page)
    shown = await page.eval_on_selector("#language", "n => n.value")
    await page.context.close()
    assert chosen == reloaded == SEEN["kk-KZ"] and shown == "kk"


async def test_every_text_is_in_every_language_with_the_same_blanks(browser: Browser) -> None:
    page = await browser.new_page()
    await page.add_script_tag(path=str(STATIC / "dashboard-texts.js"))
    texts, names = await page.evaluate("[TEXTS, LANGUAGE_NAMES]")
    await page.close()
    blanks = {key: set(BLANK.findall(value)) for key, value in texts["en"].items() if isinstance(value, str)}
    named = {"stages": list(FUNNEL_STAGES), "channels": list(get_args(Channel))}
    assert list(texts) == list(names) == ["en", "ru", "kk", "az"]
    for language, table in texts.items():
        assert list(table) == list(texts["en"]), language
        assert {key: list(table[key]) for key in named} == named, language
        assert {key: set(BLANK.findall(table[key])) for key in blanks} == blanks, language


async def test_the_origin_captions_name_the_won_column_as_it_is_headed(browser: Browser) -> None:
    """ "Won: those of them who became customers" explains the column headed "Won": in Kazakh the
    caption said «Ұтылған» (lost, as a game is) under a column headed «Сәтті мәмілелер»."""
    page = await browser.new_page()
    await page.add_script_tag(path=str(STATIC / "dashboard-texts.js"))
    texts = await page.evaluate("TEXTS")
    await page.close()
    for language, table in texts.items():
        for caption in ("originPeriod", "originAllTime"):
            assert f" {table['won']}: " in table[caption], (language, caption, table[caption])


@pytest.mark.parametrize("language", ["ru", "kk", "az"])
async def test_no_english_text_of_the_dashboards_is_left_on_the_page(
    dashboard: str, browser: Browser, language: str
) -> None:
    """Signed out (why a token is asked for), signed in, and with figures the filters no longer
    match (why not updated): no word of the English table but those every language writes so."""
    page = await opened(browser, dashboard, PHONE | {"locale": language})
    texts = await page.evaluate("TEXTS")
    lang = await page.get_attribute("html", "lang")
    signed_out = await page.evaluate(SHOWN)
    await sign_in(page)
    signed_in = await page.evaluate(SHOWN)
    await refused_period(page)
    older = await page.evaluate(SHOWN)
    await page.context.close()
    every = set.intersection(*(words(table) for table in texts.values()))  # CAC, LTV, MQL, SLA, API
    english = words(texts["en"]) - every
    left = {w.casefold() for w in WORD.findall(" ".join([signed_out, signed_in, older]))} & english
    assert lang == language and left == set()


@pytest.mark.parametrize("device", [PHONE, LAPTOP], ids=["phone", "laptop"])
async def test_axe_finds_no_violation_in_kazakh_signed_out_signed_in_or_with_older_figures(
    dashboard: str, browser: Browser, device: dict[str, Any]
) -> None:
    page = await opened(browser, dashboard, device | {"locale": "kk-KZ"})
    signed_out = await violations(page)
    await sign_in(page)
    signed_in = await violations(page)
    await refused_period(page)
    older = await violations(page)
    await page.context.close()
    assert (signed_out, signed_in, older) == ([], [], [])


@pytest.mark.parametrize("language", ["kk", "az", "ru"])
async def test_at_390_px_the_page_holds_its_longest_words(
    dashboard: str, browser: Browser, language: str
) -> None:
    """Kazakh and Azerbaijani words are long: the page stays 390 px wide, the CAC table shows every
    column, a chart's names stay clear of its bars and its figures inside it, thirteen channels too;
    amounts are written as the language writes them."""
    today = datetime.now(UTC).date()
    spent = {"period_start": str(today - timedelta(days=3)), "period_end": str(today), "amount": 99999}
    async with httpx.AsyncClient(base_url=dashboard.removesuffix("/dashboard"), headers=ADMIN) as api:
        for channel in LONGEST:
            entry = spent | {"category": "marketing", "channel": channel}
            assert (await api.post("/v1/spend", json=entry)).status_code == 201
    page = await opened(browser, dashboard, PHONE | {"locale": language})
    await sign_in(page)
    await expect(page.locator("#money-table tbody tr")).to_have_count(len(LONGEST) + 2)  # ad, all channels
    width = await page.evaluate("[document.documentElement.scrollWidth, innerWidth]")
    wider = await page.eval_on_selector_all(
        "body *:not(.visually-hidden, .visually-hidden *, svg *)",
        "nodes => nodes.filter(n => n.getBoundingClientRect().right > 390).map(n => n.id || n.tagName)",
    )
    table = await page.eval_on_selector(".scrolls", "n => [n.scrollWidth, n.clientWidth]")
    crowded = await page.eval_on_selector_all("svg", CROWDED)
    spent_on_landing = await page.text_content("#money text.value[data-name=landing_page]")
    ARTIFACTS.mkdir(exist_ok=True)
    await page.screenshot(path=str(ARTIFACTS / f"dashboard-{language}-phone.png"), full_page=True)
    await page.context.close()
    assert width == [390, 390] and wider == []
    assert table[0] == table[1] and crowded == []
    assert spent_on_landing is not None and re.search(AMOUNT[language], spent_on_landing)
