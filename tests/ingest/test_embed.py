"""GET /v1/sources/{id}/embed: a source's form as HTML to paste into its site (the browser's
part, a visitor filling it in on another origin, is tests/browser/test_embedded_form.py)."""

import uuid
from html.parser import HTMLParser

import pytest
from pydantic import ValidationError

from services.ingest.app import create_app
from services.ingest.config import IngestSettings
from tests.conftest import ADMIN, ANONYMOUS, Servers, running


class Inputs(HTMLParser):
    """Each input's, textarea's and form's attributes, by name (the form's by "form")."""

    def __init__(self) -> None:
        super().__init__()
        self.found: dict[str, dict[str, str | None]] = {}
        self.text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        named = dict(attrs)
        if tag == "form":
            self.found["form"] = named
        elif tag in ("input", "textarea") and named.get("name"):
            self.found[str(named["name"])] = named

    def handle_data(self, data: str) -> None:
        self.text.append(data)


def parsed(snippet: str) -> Inputs:
    inputs = Inputs()
    inputs.feed(snippet)
    return inputs


async def test_the_snippet_posts_to_the_sources_form_in_its_language_with_its_required_fields(
    servers: Servers,
) -> None:
    settings = servers.settings(IngestSettings, public_url="https://leads.example.kz/")
    async with running(create_app(settings)) as client:
        source = (
            await client.post(
                "/v1/sources",
                headers=ADMIN,
                json={
                    "name": "Көктем",
                    "channel": "landing_page",
                    "required_fields": ["phone", "consent", "city"],
                    "default_language": "kk",
                },
            )
        ).json()
        kazakh = await client.get(f"/v1/sources/{source['id']}/embed", headers=ADMIN)
        russian = await client.get(f"/v1/sources/{source['id']}/embed?language=ru", headers=ADMIN)

    assert kazakh.status_code == 200 and kazakh.headers["content-type"].startswith("text/html")
    form = parsed(kazakh.text)
    assert form.found["form"]["action"] == f"https://leads.example.kz/v1/forms/{source['id']}"
    assert form.found["form"]["method"] == "post"
    assert form.found["language"]["value"] == "kk"
    required = {name for name, attrs in form.found.items() if "required" in attrs}
    assert required == {"phone", "consent", "city"}, "the source's required fields, its own one too"
    assert form.found["phone"]["type"] == "tel" and form.found["email"]["type"] == "email"
    assert form.found["_hp"]["tabindex"] == "-1", "the honeypot, out of the visitor's way"
    assert "page_url" in form.found and "location.href" in kazakh.text
    assert "Жіберу" in kazakh.text and "Телефон" in kazakh.text
    assert "Отправить" in russian.text and parsed(russian.text).found["language"]["value"] == "ru"


async def test_the_snippet_posts_where_it_was_asked_for_without_a_public_url(servers: Servers) -> None:
    async with running(create_app(servers.settings(IngestSettings))) as client:
        source = (
            await client.post("/v1/sources", headers=ADMIN, json={"name": "Site", "channel": "web_form"})
        ).json()
        answer = await client.get(f"/v1/sources/{source['id']}/embed", headers=ADMIN)
    form = parsed(answer.text)
    assert form.found["form"]["action"] == f"http://test/v1/forms/{source['id']}"
    assert form.found["language"]["value"] == "en" and "Send" in answer.text


async def test_the_snippet_is_for_the_admin_of_a_source_that_exists_in_a_language_we_speak(
    servers: Servers,
) -> None:
    async with running(create_app(servers.settings(IngestSettings))) as client:
        source = (
            await client.post("/v1/sources", headers=ADMIN, json={"name": "Site", "channel": "web_form"})
        ).json()
        anonymous = await client.get(f"/v1/sources/{source['id']}/embed", headers=ANONYMOUS)
        unknown = await client.get(f"/v1/sources/{uuid.uuid4()}/embed", headers=ADMIN)
        german = await client.get(f"/v1/sources/{source['id']}/embed?language=de", headers=ADMIN)
    assert anonymous.status_code == 401
    assert unknown.status_code == 404
    assert german.status_code == 422 and german.json()["errors"][0]["field"] == "language"


def test_a_public_url_without_a_scheme_is_refused_and_an_empty_one_is_unset() -> None:
    with pytest.raises(ValidationError, match="http:// or https://"):
        IngestSettings(public_url="leads.example.kz")
    assert IngestSettings(public_url="").public_url is None
