"""A form on a page that is not UTF-8: an older site in windows-1251 or windows-1254 sends its
form in that charset, the letters it lacks as `&#NNNN;`, as a browser does."""

import uuid
from collections.abc import AsyncIterator
from urllib.parse import quote_plus

import httpx
import pytest

from services.ingest.app import create_app
from services.ingest.config import IngestSettings
from services.ingest.form_charsets import is_utf8, legacy_charset, legacy_fields
from tests.conftest import ADMIN, Servers, running
from tests.helpers import create_source

ORIGIN = "https://old.example.kz"
URLENCODED = "application/x-www-form-urlencoded"


@pytest.fixture(scope="module")
async def ingest(servers: Servers) -> AsyncIterator[httpx.AsyncClient]:
    async with running(create_app(servers.settings(IngestSettings, rate_limit_per_ip=""))) as client:
        yield client


def as_a_browser_sends(fields: dict[str, str], charset: str) -> bytes:
    """A form's body from a page in `charset`: each letter it has as its byte, the others as
    numeric references."""
    pairs = (
        f"{quote_plus(name.encode(charset, 'xmlcharrefreplace'))}="
        f"{quote_plus(value.encode(charset, 'xmlcharrefreplace'))}"
        for name, value in fields.items()
    )
    return "&".join(pairs).encode("ascii")


async def old_site(ingest: httpx.AsyncClient, language: str) -> str:
    source = await create_source(
        ingest, channel="landing_page", allowed_origins=[ORIGIN], default_language=language
    )
    return str(source["id"])


async def posted(ingest: httpx.AsyncClient, source_id: str, body: bytes, **headers: str) -> dict:
    sent = {"Origin": ORIGIN, "Accept": "application/json", "Content-Type": URLENCODED} | headers
    response = await ingest.post(f"/v1/forms/{source_id}", content=body, headers=sent)
    assert response.status_code == 202, response.text
    lead = await ingest.get(f"/v1/leads/{response.json()['lead_id']}", headers=ADMIN)
    return lead.json()


async def test_a_russian_sites_windows_1251_form_keeps_the_persons_kazakh_name(
    ingest: httpx.AsyncClient,
) -> None:
    source_id = await old_site(ingest, "ru")
    email = f"a-{uuid.uuid4().hex[:8]}@example.kz"
    fields = {"name": "Әсем Нұрланова", "email": email, "Компания": "ТОО «Жұлдыз»"}
    lead = await posted(ingest, source_id, as_a_browser_sends(fields, "cp1251"))
    attributes = lead["attributes"]
    assert (attributes["first_name"], attributes["last_name"]) == ("Әсем", "Нұрланова")
    assert attributes["company"] == "ТОО «Жұлдыз»"


async def test_an_azerbaijani_sites_windows_1254_form_keeps_the_persons_name(
    ingest: httpx.AsyncClient,
) -> None:
    source_id = await old_site(ingest, "az")
    email = f"r-{uuid.uuid4().hex[:8]}@example.az"
    fields = {"Ad soyad": "Rəşid Məmmədoğlu", "E-poçt": email, "favourite": "çay & şirniyyat"}
    lead = await posted(ingest, source_id, as_a_browser_sends(fields, "cp1254"))
    attributes = lead["attributes"]
    assert (attributes["first_name"], attributes["last_name"]) == ("Rəşid", "Məmmədoğlu")
    assert attributes["custom"] == {"favourite": "çay & şirniyyat"}


async def test_the_charset_a_post_names_wins_and_a_utf8_post_is_read_as_before(
    ingest: httpx.AsyncClient,
) -> None:
    source_id = await old_site(ingest, "ru")
    turkish = {"name": "Ömer Çelik", "email": f"o-{uuid.uuid4().hex[:8]}@example.az"}
    named = {"Content-Type": f"{URLENCODED}; charset=windows-1254"}
    lead = await posted(ingest, source_id, as_a_browser_sends(turkish, "cp1254"), **named)
    assert lead["attributes"]["first_name"] == "Ömer"
    today = {"name": "Иван &#1179; Петров", "email": f"i-{uuid.uuid4().hex[:8]}@example.kz"}
    lead = await posted(ingest, source_id, as_a_browser_sends(today, "utf-8"))
    assert (lead["attributes"]["first_name"], lead["attributes"]["last_name"]) == ("Иван", "&#1179; Петров")


def test_a_body_is_utf8_unless_its_escaped_bytes_are_not() -> None:
    assert is_utf8(b"name=%D0%98%D0%B2%D0%B0%D0%BD&x=a+b")
    assert is_utf8(b"")
    assert not is_utf8(b"name=%C8%E2%E0%ED")


def test_the_legacy_charset_is_the_named_one_else_the_languages() -> None:
    assert legacy_charset(f"{URLENCODED}; charset=windows-1251", ["az"]) == "cp1251"
    assert legacy_charset(f'{URLENCODED}; charset="koi8-r"', []) == "koi8-r"
    assert legacy_charset(f"{URLENCODED}; charset=nonsense", ["az-AZ", "ru"]) == "cp1254"
    assert legacy_charset(URLENCODED, ["kk", "az"]) == "cp1251"
    assert legacy_charset(URLENCODED, []) == "cp1251"


def test_numeric_references_become_their_letters_but_not_controls_or_nonsense() -> None:
    body = b"a=%26%231240%3B%26%23x4d9%3B&b=%26%230%3B%26%231114112%3B%26%23xD800%3B"
    assert legacy_fields(body + b"&c=%C0", "cp1251", 10) == [
        ("a", "Әә"),
        ("b", "&#0;&#1114112;&#xD800;"),
        ("c", "А"),
    ]
    with pytest.raises(ValueError):
        legacy_fields(b"&".join([b"a=%C0"] * 11), "cp1251", 10)
