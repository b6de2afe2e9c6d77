"""The unsubscribe link's pages for a person nurture no longer knows (erased since the email
left): in the language their browser asks for, as the page for a cut link is, not English."""

import uuid
from collections.abc import AsyncIterator

import httpx
import pytest

from services.nurture.app import create_app
from services.nurture.config import NurtureSettings
from services.nurture.unsubscribe_links import unsubscribe_token
from shared.languages import say
from tests.conftest import Servers, running


@pytest.fixture(scope="module")
def settings(servers: Servers) -> NurtureSettings:
    return servers.settings(NurtureSettings)


@pytest.fixture(scope="module")
async def nurture(settings: NurtureSettings) -> AsyncIterator[httpx.AsyncClient]:
    async with running(create_app(settings)) as client:
        yield client


@pytest.mark.parametrize("language", ["kk", "az", "ru"])
async def test_an_erased_persons_link_answers_in_their_browsers_language(
    nurture: httpx.AsyncClient, settings: NurtureSettings, language: str
) -> None:
    lead_id = uuid.uuid4()  # signed by nurture, but no lead it follows: erased since
    url = f"/v1/unsubscribe?lead_id={lead_id}&token={unsubscribe_token(settings.unsubscribe_key, lead_id)}"
    browser = {"Accept": "text/html", "Accept-Language": f"{language}-KZ, en;q=0.5"}
    asked = await nurture.get(url, headers=browser)
    assert asked.status_code == 200
    assert asked.headers["content-language"] == language
    assert say("unsubscribe_title", language) in asked.text
    done = await nurture.post(url, headers=browser)
    assert done.status_code == 200
    assert done.headers["content-language"] == language
    assert say("unsubscribed_title", language) in done.text


async def test_with_no_language_of_ours_asked_the_page_is_english(
    nurture: httpx.AsyncClient, settings: NurtureSettings
) -> None:
    lead_id = uuid.uuid4()
    url = f"/v1/unsubscribe?lead_id={lead_id}&token={unsubscribe_token(settings.unsubscribe_key, lead_id)}"
    asked = await nurture.get(url, headers={"Accept": "text/html", "Accept-Language": "de-DE, fr;q=0.8"})
    assert asked.headers["content-language"] == "en"
