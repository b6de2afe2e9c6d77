"""Plain HTML form posts: redirect or JSON, honeypot, CORS per source."""

import asyncio
import random
import uuid
from collections.abc import AsyncIterator

import httpx
import pytest
from sqlalchemy import text

from services.ingest import idempotency, spam
from services.ingest.app import create_app
from services.ingest.config import IngestSettings
from tests.conftest import ADMIN, Servers, running
from tests.helpers import create_source, opened_events_of, refused_fields
from tests.ingest.conftest import ingest_db
from tests.shared.test_no_personal_data_in_logs import every_log_line

ORIGIN = "https://promo.example.kz"


@pytest.fixture(scope="module")
async def ingest(servers: Servers) -> AsyncIterator[httpx.AsyncClient]:
    """Ingest without the per-IP limit: this module's posts all come from one address, over
    30 in a second on a quick machine (tests/ingest/test_abuse.py checks the limit)."""
    async with running(create_app(servers.settings(IngestSettings, rate_limit_per_ip=""))) as client:
        yield client


async def form_source(client: httpx.AsyncClient, **settings: object) -> dict[str, str]:
    given = {"allowed_origins": [ORIGIN], "redirect_url": "https://promo.example.kz/thanks?x=1"} | settings
    return await create_source(client, channel="landing_page", **given)


async def test_urlencoded_form_redirects_with_the_lead_id(
    ingest: httpx.AsyncClient, servers: Servers
) -> None:
    source = await form_source(ingest)
    email = f"f-{uuid.uuid4().hex[:8]}@example.kz"
    fields = {
        "name": "Аружан Сейітқызы",
        "email": email,
        "consent": "on",
        "utm_source": "instagram",
        "favourite_colour": "blue",
        "_hp": "",
    }
    response = await ingest.post(
        f"/v1/forms/{source['id']}",
        data=fields,
        headers={"Origin": ORIGIN, "Referer": f"{ORIGIN}/spring?utm_campaign=spring"},
    )
    assert response.status_code == 303
    location = httpx.URL(response.headers["location"])
    assert str(location).startswith("https://promo.example.kz/thanks?x=1&lead_id=")
    assert response.headers["access-control-allow-origin"] == ORIGIN
    lead_id = location.params["lead_id"]
    lead = (await ingest.get(f"/v1/leads/{lead_id}", headers=ADMIN)).json()
    assert lead["email"] == email
    attributes = lead["attributes"]
    assert (attributes["first_name"], attributes["last_name"]) == ("Аружан", "Сейітқызы")
    assert attributes["consent"] is True
    assert attributes["utm"] == {"source": "instagram", "campaign": "spring"}
    assert attributes["custom"] == {"favourite_colour": "blue"}
    assert attributes["page_url"] == f"{ORIGIN}/spring?utm_campaign=spring"
    events = await opened_events_of(ingest, servers.bootstrap, lead_id, lambda es: len(es) >= 1)
    assert events[0].data["channel"] == "landing_page"


async def test_a_fetch_sent_again_with_its_idempotency_key_records_the_form_once(
    ingest: httpx.AsyncClient,
) -> None:
    """A visitor's second click on a fetch() form, or a retry after a lost answer: without the
    key honoured the repeat went on the lead as a second `form_submitted` (+10 engagement)."""
    source = await form_source(ingest)
    fields = {"first_name": "Rəşad", "phone": "+994 50 123 45 67", "message": "Salam, qiymət?"}
    headers = {"Origin": ORIGIN, "Accept": "application/json", "Idempotency-Key": "click-1"}
    url = f"/v1/forms/{source['id']}"
    first, again = [await ingest.post(url, data=fields, headers=headers) for _ in range(2)]
    assert (first.status_code, again.status_code) == (202, 202)
    assert again.json() == first.json() and again.headers["idempotent-replayed"] == "true"
    assert "idempotent-replayed" not in first.headers
    as_page = await ingest.post(url, data=fields, headers=headers | {"Accept": "text/html"})
    assert as_page.status_code == 303 and as_page.headers["idempotent-replayed"] == "true"
    assert httpx.URL(as_page.headers["location"]).params["lead_id"] == first.json()["lead_id"]
    lead = (await ingest.get(f"/v1/leads/{first.json()['lead_id']}", headers=ADMIN)).json()
    assert lead["history"] == []  # the capture alone: no repeat went on the lead

    other = await ingest.post(url, data=fields | {"message": "Salam"}, headers=headers)
    assert other.status_code == 422 and refused_fields(other) == ["Idempotency-Key"]
    assert other.headers["access-control-allow-origin"] == ORIGIN


async def test_multipart_form_answers_json_and_stores_every_field(ingest: httpx.AsyncClient) -> None:
    source = await form_source(ingest)
    email, digits = f"m-{uuid.uuid4().hex[:8]}@example.az", f"{random.randint(0, 9_999_999):07d}"
    posted = {
        "name": "Leyla Aliyeva",
        "email": email,
        "phone": f"+994 50 {digits[:3]} {digits[3:5]} {digits[5:]}",
        "company": "Baku Trade",
        "job_title": "CEO",
        "timeframe": "immediately",
        "budget": "5000",
        "is_decision_maker": "yes",
        "utm_source": "google",
        "utm_campaign": "autumn",
        "promo_code": "AUTUMN24",
    }
    response = await ingest.post(
        f"/v1/forms/{source['id']}",
        files={name: (None, value) for name, value in posted.items()},
        headers={"Accept": "application/json", "Origin": ORIGIN},
    )
    assert response.status_code == 202, response.text
    assert response.json()["status"] == "accepted"
    stored = await ingest.get(f"/v1/leads/{response.json()['lead_id']}", headers=ADMIN)
    assert stored.status_code == 200, stored.text
    lead = stored.json()
    assert (lead["email"], lead["phone"]) == (email, f"+99450{digits}")
    assert lead["attributes"] == {
        "first_name": "Leyla",
        "last_name": "Aliyeva",
        "company": "Baku Trade",
        "job_title": "CEO",
        "timeframe": "immediately",
        "budget": 5000.0,
        "is_decision_maker": True,
        "utm": {"source": "google", "campaign": "autumn"},
        "campaign": "autumn",
        "custom": {"promo_code": "AUTUMN24"},
    }


async def test_honeypot_looks_accepted_but_is_kept_as_spam(ingest: httpx.AsyncClient) -> None:
    source = await form_source(ingest)
    email = f"bot-{uuid.uuid4().hex[:8]}@example.kz"
    response = await ingest.post(
        f"/v1/forms/{source['id']}", data={"email": email, "_hp": "http://spam"}, headers={"Origin": ORIGIN}
    )
    assert response.status_code == 303 and "lead_id=" in response.headers["location"]
    async with ingest_db(ingest).transaction() as session:
        leads = (
            await session.execute(text("SELECT count(*) FROM leads WHERE email = :e"), {"e": email})
        ).scalar_one()
        spam = (
            await session.execute(
                text("SELECT count(*) FROM spam_submissions WHERE fields->>'email' = :e"), {"e": email}
            )
        ).scalar_one()
        outbox = (
            await session.execute(
                text("SELECT count(*) FROM outbox WHERE position(:e in convert_from(value, 'UTF8')) > 0"),
                {"e": email},
            )
        ).scalar_one()
    assert (leads, spam, outbox) == (0, 1, 0)


async def test_honeypot_posts_are_forgotten_after_the_retention(ingest: httpx.AsyncClient) -> None:
    source = await form_source(ingest)
    marks = [f"bot-{uuid.uuid4().hex[:8]}@example.kz" for _ in range(2)]
    for email in marks:
        posted = {"email": email, "_hp": "http://spam"}
        await ingest.post(f"/v1/forms/{source['id']}", data=posted, headers={"Origin": ORIGIN})
    db = ingest_db(ingest)
    async with db.transaction() as session:  # the first was received 31 days ago
        await session.execute(
            text(
                "UPDATE spam_submissions SET received_at = now() - interval '31 days'"
                " WHERE fields->>'email' = :e"
            ),
            {"e": marks[0]},
        )
    assert await spam.forget_older_than(db, days=30) >= 1
    async with db.transaction() as session:
        left = await session.execute(
            text("SELECT fields->>'email' FROM spam_submissions WHERE fields->>'email' = ANY(:m)"),
            {"m": marks},
        )
        assert [email for (email,) in left] == marks[1:]
    assert ingest._transport.app.state.settings.spam_days == 30  # type: ignore[attr-defined]


async def test_cors_only_for_the_sources_origins(ingest: httpx.AsyncClient) -> None:
    source = await form_source(ingest)
    url = f"/v1/forms/{source['id']}"
    allowed = await ingest.options(url, headers={"Origin": ORIGIN, "Access-Control-Request-Method": "POST"})
    assert allowed.status_code == 204 and allowed.headers["access-control-allow-origin"] == ORIGIN
    other = await ingest.options(
        url, headers={"Origin": "https://evil.example", "Access-Control-Request-Method": "POST"}
    )
    assert other.status_code == 403 and "access-control-allow-origin" not in other.headers
    posted = await ingest.post(
        url, data={"email": "x@example.kz"}, headers={"Origin": "https://evil.example"}
    )
    assert posted.status_code == 403


async def test_form_errors_name_the_field(ingest: httpx.AsyncClient) -> None:
    source = await form_source(ingest)
    url = f"/v1/forms/{source['id']}"
    response = await ingest.post(url, data={"email": "not an email"}, headers={"Origin": ORIGIN})
    assert response.status_code == 422 and response.json()["errors"][0]["field"] == "email"
    assert response.headers["access-control-allow-origin"] == ORIGIN
    as_json = await ingest.post(url, json={"email": "a@example.kz"}, headers={"Origin": ORIGIN})
    assert as_json.status_code == 415


async def test_an_unrecognised_yes_or_no_is_refused_naming_the_field_as_the_json_route_does(
    ingest: httpx.AsyncClient,
) -> None:
    """`maybe` is no answer to a checkbox: the form refuses it as `POST /v1/leads` does (a
    problem+json for a script, the error page for a browser), rather than storing `false`."""
    source = await form_source(ingest)
    url, email = f"/v1/forms/{source['id']}", f"b-{uuid.uuid4().hex[:8]}@example.kz"
    fields = {"email": email, "is_decision_maker": "maybe"}
    by_json = await ingest.post("/v1/leads", json=fields, headers={"X-Source-Key": source["key"]})
    assert refused_fields(by_json) == ["is_decision_maker"]
    script = await ingest.post(url, data=fields, headers={"Accept": "application/json", "Origin": ORIGIN})
    assert refused_fields(script) == ["is_decision_maker"]
    assert script.json()["errors"][0]["reason"] == by_json.json()["errors"][0]["reason"]
    browser = await ingest.post(
        url, data={**fields, "consent": "maybe"}, headers={"Accept": "text/html", "Origin": ORIGIN}
    )
    assert browser.status_code == 422 and browser.headers["content-type"].startswith("text/html")
    assert "<b>is_decision_maker</b>" in browser.text and "<b>Consent</b>" in browser.text
    async with ingest_db(ingest).transaction() as session:
        stored = await session.execute(text("SELECT count(*) FROM leads WHERE email = :e"), {"e": email})
        assert stored.scalar_one() == 0


CHECKBOX_VALUES = {
    "on": True, "ON": True, "true": True, "1": True, "yes": True,
    "off": False, "false": False, "0": False, "no": False, "": None,
}  # fmt: skip


@pytest.mark.parametrize(("posted", "meaning"), CHECKBOX_VALUES.items(), ids=CHECKBOX_VALUES)
async def test_a_checkbox_takes_the_usual_yes_and_no_values(
    ingest: httpx.AsyncClient, posted: str, meaning: bool | None
) -> None:
    """An empty field, as an unticked box is absent, leaves the answer unset."""
    source = await form_source(ingest)
    email = f"c-{uuid.uuid4().hex[:8]}@example.kz"
    response = await ingest.post(
        f"/v1/forms/{source['id']}",
        data={"email": email, "is_decision_maker": posted},
        headers={"Accept": "application/json", "Origin": ORIGIN},
    )
    assert response.status_code == 202, response.text
    lead = (await ingest.get(f"/v1/leads/{response.json()['lead_id']}", headers=ADMIN)).json()
    assert lead["attributes"].get("is_decision_maker") is meaning


async def test_unknown_or_disabled_form_is_404(ingest: httpx.AsyncClient) -> None:
    source = await form_source(ingest)
    await ingest.patch(f"/v1/sources/{source['id']}", json={"active": False}, headers=ADMIN)
    disabled = await ingest.post(f"/v1/forms/{source['id']}", data={"email": "a@example.kz"})
    unknown = await ingest.post(f"/v1/forms/{uuid.uuid4()}", data={"email": "a@example.kz"})
    assert disabled.status_code == unknown.status_code == 404


async def test_a_visitor_posting_to_a_form_that_takes_no_enquiries_is_told_in_their_language(
    ingest: httpx.AsyncClient,
) -> None:
    """A browser's post to a switched-off source, or to a mistyped form URL, was shown
    `{"title":"No such form","status":404}`, and the enquiry was lost without a word the
    visitor could read (found by a review)."""
    source = await create_source(ingest, channel="landing_page", default_language="az")
    switched_off = await ingest.patch(f"/v1/sources/{source['id']}", json={"active": False}, headers=ADMIN)
    assert switched_off.status_code == 200, switched_off.text

    async def posted(source_id: object, languages: str, **fields: str) -> httpx.Response:
        headers = {"Accept": "text/html,application/xhtml+xml,*/*;q=0.8", "Accept-Language": languages}
        fields = {"email": "a@example.kz"} | fields
        answer = await ingest.post(f"/v1/forms/{source_id}", data=fields, headers=headers)
        assert answer.status_code == 404 and answer.headers["content-type"].startswith("text/html")
        return answer

    site = await posted(source["id"], "ru-RU,ru;q=0.9")  # the switched-off source's language
    assert site.headers["content-language"] == "az" and '<html lang="az">' in site.text
    assert "Bu forma artıq müraciət qəbul etmir" in site.text and "başqa yolla" in site.text
    mistyped = await posted(uuid.uuid4(), "ru-RU,ru;q=0.9,en;q=0.8")  # no source: the browser's
    assert mistyped.headers["content-language"] == "ru"
    assert "Эта форма больше не принимает заявки" in mistyped.text and "иначе" in mistyped.text
    own = await posted(uuid.uuid4(), "ru-RU", language="kk")  # the page's own word first
    assert own.headers["content-language"] == "kk" and "Бұл форма енді өтінімдерді қабылдамайды" in own.text
    english = await posted(uuid.uuid4(), "de")
    assert "This form is no longer taking enquiries" in english.text and "another way" in english.text
    script = await ingest.post(
        f"/v1/forms/{uuid.uuid4()}", data={"email": "a@example.kz"}, headers={"Accept": "application/json"}
    )
    assert script.status_code == 404 and script.headers["content-type"] == "application/problem+json"
    assert script.json()["title"] == "No such form"


async def test_a_visitor_posting_to_a_form_address_cut_short_is_told_in_their_language(
    ingest: httpx.AsyncClient,
) -> None:
    """A form address whose id is no id (a builder cut it, a typo) answered a browser FastAPI's
    422 JSON naming `source_id` (found by a review); a script still gets the 422 naming it."""
    source_id = str(uuid.uuid4())[:-6]
    headers = {"Accept": "text/html,application/xhtml+xml,*/*;q=0.8", "Accept-Language": "kk-KZ,ru;q=0.8"}
    page = await ingest.post(f"/v1/forms/{source_id}", data={"email": "a@example.kz"}, headers=headers)
    assert page.status_code == 404 and page.headers["content-type"].startswith("text/html")
    assert page.headers["content-language"] == "kk" and "Бұл форма енді өтінімдерді қабылдамайды" in page.text
    script = await ingest.post(f"/v1/forms/{source_id}", data={"email": "a@example.kz"})
    assert script.status_code == 422 and script.json()["errors"][0]["field"] == "source_id"
    other = await ingest.get("/v1/leads/not-an-id", headers={**ADMIN, "Accept": "text/html"})
    assert other.status_code == 422 and other.headers["content-type"] == "application/problem+json"


async def test_a_visitor_whose_message_is_over_the_bound_is_asked_in_their_language_to_shorten_it(
    ingest: httpx.AsyncClient,
) -> None:
    """A browser's post over the body's bound was shown the 413's English JSON (found by a
    review); a script's, and any other route's, still gets the problem."""
    source = await create_source(ingest, channel="landing_page", default_language="kk")
    url, long = f"/v1/forms/{source['id']}", {"email": "a@example.kz", "message": "Сәлем! " * 6000}
    browser = {"Accept": "text/html,*/*;q=0.8", "Accept-Language": "ru"}
    told = await ingest.post(url, data=long, headers=browser)
    assert told.status_code == 413 and told.headers["content-type"].startswith("text/html")
    assert told.headers["content-language"] == "kk" and "Хабарламаңыз тым ұзын" in told.text

    async def streamed() -> AsyncIterator[bytes]:  # no Content-Length: the bound is met as it is read
        yield b"email=a%40example.kz&message="
        for _ in range(70):
            yield b"x" * 1000

    form = {"Content-Type": "application/x-www-form-urlencoded"}
    unknown = f"/v1/forms/{uuid.uuid4()}"
    chunked = await ingest.post(url, content=streamed(), headers=browser | form)
    assert chunked.status_code == 413 and "Хабарламаңыз тым ұзын" in chunked.text
    no_source = await ingest.post(unknown, data=long, headers=browser)
    assert no_source.status_code == 413 and "Ваше сообщение слишком длинное" in no_source.text
    script = await ingest.post(url, data=long, headers={"Accept": "application/json"})
    assert script.status_code == 413 and script.headers["content-type"] == "application/problem+json"
    other = await ingest.post("/v1/leads", content=b"x" * 70_000, headers=browser)
    assert other.status_code == 413 and other.headers["content-type"] == "application/problem+json"


async def test_the_thank_you_and_error_pages_speak_the_persons_language(
    ingest: httpx.AsyncClient, servers: Servers
) -> None:
    source = await create_source(ingest, channel="landing_page", default_language="ru")
    assert source["default_language"] == "ru"
    browser = {"Accept": "text/html,application/xhtml+xml,*/*;q=0.8"}
    email = f"kk-{uuid.uuid4().hex[:8]}@example.kz"
    kazakh = await ingest.post(
        f"/v1/forms/{source['id']}", data={"email": email, "language": "kk"}, headers=browser
    )
    assert kazakh.status_code == 202 and kazakh.headers["content-language"] == "kk"
    assert '<html lang="kk">' in kazakh.text and "Рақмет! Жақын арада Сізбен хабарласамыз." in kazakh.text
    wrong = await ingest.post(f"/v1/forms/{source['id']}", data={"email": "not-an-email"}, headers=browser)
    assert wrong.status_code == 422 and wrong.headers["content-type"].startswith("text/html")
    assert wrong.headers["content-language"] == "ru"  # the source's default: the person gave none
    assert "Пожалуйста, проверьте форму" in wrong.text and "<b>Электронная почта</b>" in wrong.text
    script = await ingest.post(
        f"/v1/forms/{source['id']}", data={"email": "not-an-email"}, headers={"Accept": "application/json"}
    )
    assert script.status_code == 422 and script.headers["content-type"] == "application/problem+json"
    async with ingest_db(ingest).transaction() as session:
        lead_id = str(
            (await session.execute(text("SELECT id FROM leads WHERE email = :e"), {"e": email})).scalar()
        )
    events = await opened_events_of(ingest, servers.bootstrap, lead_id, lambda es: len(es) >= 1)
    assert events[0].data["source_language"] == "ru" and events[0].data["language"] == "kk"


async def test_the_error_page_tells_the_visitor_what_to_fix_in_their_own_language(
    ingest: httpx.AsyncClient,
) -> None:
    """The page's headings were translated but each field's reason was the developer's English
    ("not a valid email address: An email address must have an @-sign."), and a site with no
    default language answered a Russian browser in English."""
    source = await create_source(ingest, channel="landing_page", required_fields=["company"])
    url = f"/v1/forms/{source['id']}"

    async def page(fields: dict[str, str], languages: str) -> str:
        headers = {"Accept": "text/html,*/*;q=0.8", "Accept-Language": languages}
        answer = await ingest.post(url, data=fields, headers=headers)
        assert answer.status_code == 422 and answer.headers["content-type"].startswith("text/html")
        return f"{answer.headers['content-language']}: {answer.text}"

    russian = await page({"email": "нет", "phone": "+7 999", "company": "ТОО"}, "ru-RU,ru;q=0.9,en;q=0.8")
    assert russian.startswith("ru: ") and "not a valid" not in russian
    assert "<b>Электронная почта</b>: Это не похоже на адрес электронной почты" in russian
    assert "<b>Телефон</b>: Это не похоже на номер телефона; укажите его с кодом страны" in russian
    kazakh = await page({"first_name": "Әлия", "language": "kk"}, "ru-RU")  # the page's own word first
    assert kazakh.startswith("kk: ") and "<b>Электрондық пошта</b>: Сізбен байланысуымыз үшін" in kazakh
    assert "<b>Компания</b>: Осы өрісті толтырыңыз." in kazakh
    azerbaijani = await page({"phone": "+994 50 123 45 67", "consent": "bəlkə"}, "en;q=0.3, az-AZ")
    assert (
        azerbaijani.startswith("az: ") and "<b>Razılıq</b>: Zəhmət olmasa, bu dəyəri yoxlayın." in azerbaijani
    )
    english = await page({"phone": "+994 50 123 45 67", "company": "X", "consent": "maybe"}, "de, *;q=0.1")
    assert english.startswith("en: ") and "<b>Consent</b>: Input should be a valid boolean" in english


async def test_a_source_with_no_region_reads_local_numbers_in_its_languages_country(
    ingest: httpx.AsyncClient,
) -> None:
    """An Azerbaijani site's visitor wrote `050 123 45 67` and was refused "write it with the
    country code": with no `default_region`, the setting's (KZ) read it (found by a review)."""

    async def kept(operator: str, **settings: str) -> tuple[str, str]:
        source = await create_source(ingest, channel="landing_page", **settings)
        digits = f"{random.randrange(10**6, 10**7)}"
        typed = f"{operator} {digits[:3]} {digits[3:5]} {digits[5:]}"
        fields = {"phone": typed, "email": f"p-{uuid.uuid4().hex[:8]}@example.az"}
        answer = await ingest.post(
            f"/v1/forms/{source['id']}", data=fields, headers={"Accept": "application/json"}
        )
        assert answer.status_code == 202, answer.text
        lead = (await ingest.get(f"/v1/leads/{answer.json()['lead_id']}", headers=ADMIN)).json()
        return lead["phone"], digits

    phone, digits = await kept("050", default_language="az")
    assert phone == f"+99450{digits}"
    phone, digits = await kept("8 701", default_language="kk")
    assert phone == f"+7701{digits}"
    phone, digits = await kept("8 701", default_language="ru")  # many countries': the setting's KZ
    assert phone == f"+7701{digits}"
    phone, digits = await kept("8 916", default_language="az", default_region="RU")  # its own wins
    assert phone == f"+7916{digits}"


async def test_an_erasure_takes_the_persons_spam_posts_however_they_typed_their_contact(
    ingest: httpx.AsyncClient,
) -> None:
    """Caught by the honeypot, the posts keep the person's name, phone, IP and user agent:
    the phone typed the national way (8 …) or the email with spaces and capitals still go."""
    source = await form_source(ingest, default_region="KZ")
    number = f"{random.randrange(10**6, 10**7)}"
    user = f"spam-{uuid.uuid4().hex[:8]}"
    typed = [
        {"phone": f"8 701 {number[:3]} {number[3:5]} {number[5:]}", "first_name": "Aigerim"},
        {"email": f"  {user.upper()}@Example.KZ ", "first_name": "Aigerim"},
    ]
    for fields in typed:
        response = await ingest.post(
            f"/v1/forms/{source['id']}", data={**fields, "_hp": "x"}, headers={"Origin": ORIGIN}
        )
        assert response.status_code == 303, response.text
    lead = await ingest.post(
        "/v1/leads",
        json={"email": f"{user}@example.kz", "phone": f"+7701{number}"},
        headers={"X-Source-Key": source["key"]},
    )
    assert lead.status_code == 202, lead.text
    erased = await ingest.delete(f"/v1/leads/{lead.json()['lead_id']}", headers=ADMIN)
    assert erased.status_code == 204
    async with ingest_db(ingest).transaction() as session:
        left = await session.execute(
            text(
                "SELECT count(*) FROM spam_submissions WHERE fields->>'first_name' = 'Aigerim'"
                " AND (fields->>'phone' LIKE :n OR fields->>'email' ILIKE :u)"
            ),
            {"n": f"%{number[5:]}", "u": f"%{user}%"},
        )
        assert left.scalar_one() == 0


async def test_a_form_with_a_file_field_left_empty_is_taken(ingest: httpx.AsyncClient) -> None:
    """A browser sends a form's empty <input type=file> as a part with filename="": the form was
    answered 400 "Too many files" with no field named, and every lead of a form with an optional
    attachment was lost (found by a review). Files are not ingest's: they are left out."""
    source = await form_source(ingest)
    email = f"f-{uuid.uuid4().hex[:8]}@example.kz"
    response = await ingest.post(
        f"/v1/forms/{source['id']}",
        data={"email": email, "first_name": "Aigul"},
        files={"attachment": ("", b"", "application/octet-stream"), "cv": ("cv.txt", b"hello", "text/plain")},
        headers={"Accept": "application/json", "Origin": ORIGIN},
    )
    assert response.status_code == 202, response.text
    lead = (await ingest.get(f"/v1/leads/{response.json()['lead_id']}", headers=ADMIN)).json()
    assert (lead["email"], lead["attributes"]) == (email, {"first_name": "Aigul"})


async def test_a_source_given_its_forms_page_address_takes_that_pages_posts(
    ingest: httpx.AsyncClient,
) -> None:
    """`allowed_origins` as a marketer copies it from the browser's bar: every post of the form,
    which a browser sends with `Origin: https://promo.example.kz`, was refused."""
    source = await form_source(ingest, allowed_origins=[f"{ORIGIN}/spring?utm_source=instagram"])
    assert source["allowed_origins"] == [ORIGIN]
    email = f"o-{uuid.uuid4().hex[:8]}@example.kz"
    posted = await ingest.post(f"/v1/forms/{source['id']}", data={"email": email}, headers={"Origin": ORIGIN})
    assert posted.status_code == 303, posted.text


async def test_a_visitor_refused_for_the_pages_origin_is_told_in_their_language_and_the_operator_sees_it(
    ingest: httpx.AsyncClient,
) -> None:
    """The refusal was `{"title":"This form does not accept posts from that origin"}` in raw
    English JSON on the visitor's screen, and nothing logged or counted: a form refusing its own
    site's visitors went unnoticed."""
    source = await form_source(ingest, default_language="ru")
    url, email = f"/v1/forms/{source['id']}", f"r-{uuid.uuid4().hex[:8]}@example.kz"
    browser = {"Origin": "https://copy.example.kz", "Accept": "text/html,*/*;q=0.8"}
    with every_log_line() as written:
        russian = await ingest.post(url, data={"email": email, "first_name": "Аружан"}, headers=browser)
        kazakh = await ingest.post(url, data={"email": email, "language": "kk"}, headers=browser)
    assert russian.status_code == kazakh.status_code == 403
    assert russian.headers["content-type"].startswith("text/html")
    assert russian.headers["content-language"] == "ru" and kazakh.headers["content-language"] == "kk"
    assert "Форма не отправлена" in russian.text and "свяжитесь с нами иначе" in russian.text
    assert "Форма жіберілмеді" in kazakh.text
    logged = [line for line in written.getvalue().splitlines() if "form post refused" in line]
    assert len(logged) == 1, logged  # then a line a minute at most, with how many more (below)
    assert (
        f"source {source['id']} takes posts from {ORIGIN} only, this one came from https://copy.example.kz"
        in (logged[0])
    )
    assert email.split("@")[0] not in written.getvalue() and "Аружан" not in written.getvalue()
    script = await ingest.post(
        url,
        data={"email": email},
        headers={"Origin": "https://copy.example.kz", "Accept": "application/json"},
    )
    assert script.status_code == 403 and script.headers["content-type"] == "application/problem+json"
    assert script.json()["title"] == "This form does not accept posts from that origin"
    metrics = (await ingest.get("/metrics", headers=ADMIN)).text
    counted = (
        f'leadflow_ingest_form_posts_refused_total{{reason="foreign_origin",source_id="{source["id"]}"}} 3.0'
    )
    assert counted in metrics
    async with ingest_db(ingest).transaction() as session:
        stored = await session.execute(text("SELECT count(*) FROM leads WHERE email = :e"), {"e": email})
        assert stored.scalar_one() == 0


async def test_a_source_with_allowed_origins_refuses_a_post_naming_no_origin(
    ingest: httpx.AsyncClient,
) -> None:
    """A bot posting the form from a script sends no `Origin`; every browser names the page's
    origin on a POST, a plain form's too. A page that withholds it (`Origin: null`) is still
    taken: its visitor is as real as any."""
    source = await form_source(ingest)
    url = f"/v1/forms/{source['id']}"
    refusals = ingest._transport.app.state.refused_posts  # type: ignore[attr-defined]
    with every_log_line() as written:
        script = await ingest.post(
            url, data={"email": "bot-1@example.kz"}, headers={"Accept": "application/json"}
        )
        page = await ingest.post(url, data={"email": "bot-2@example.kz"}, headers={"Accept": "text/html"})
        refusals.every_seconds = 0  # as when a minute has passed since the last line
        try:
            await ingest.post(url, data={"email": "bot-3@example.kz"})
        finally:
            refusals.every_seconds = 60
    assert script.status_code == page.status_code == 403
    assert script.json()["title"].startswith("This form takes posts from its site's pages only")
    assert page.headers["content-type"].startswith("text/html") and "The form was not sent" in page.text
    logged = [line for line in written.getvalue().splitlines() if "form post refused" in line]
    assert len(logged) == 2 and "bot-" not in written.getvalue()
    assert f"source {source['id']} takes posts from {ORIGIN} only, this one named no origin" in logged[0]
    assert "(0 more refused since the last line)" in logged[0]
    assert "(1 more refused since the last line)" in logged[1]
    metrics = (await ingest.get("/metrics", headers=ADMIN)).text
    assert (
        f'leadflow_ingest_form_posts_refused_total{{reason="no_origin",source_id="{source["id"]}"}} 3.0'
        in metrics
    )

    withheld = await ingest.post(
        url, data={"email": f"n-{uuid.uuid4().hex[:8]}@example.kz"}, headers={"Origin": "null"}
    )
    assert withheld.status_code == 303, withheld.text
    anywhere = await create_source(ingest, channel="landing_page")  # no allowed_origins: any post
    taken = await ingest.post(
        f"/v1/forms/{anywhere['id']}", data={"email": f"a-{uuid.uuid4().hex[:8]}@example.kz"}
    )
    assert taken.status_code == 202, taken.text


async def test_a_form_sent_again_within_minutes_is_recorded_once_though_a_plain_form_sends_no_key(
    ingest: httpx.AsyncClient,
) -> None:
    """A plain HTML form on a slow network, its button clicked three times: three posts, three
    `form_submitted` on the lead (the score went from 20 to 40), and the form can send no
    Idempotency-Key. The same post again (same source, address and fields) within ten minutes
    is now the first one, answered alike; clicks at once are one too."""
    source = await form_source(ingest)
    url, email = f"/v1/forms/{source['id']}", f"d-{uuid.uuid4().hex[:8]}@example.kz"
    fields = {"email": email, "first_name": "Дана", "message": "Перезвоните", "page_url": f"{ORIGIN}/a"}
    browser = {"Origin": ORIGIN, "Accept": "text/html,*/*;q=0.8"}
    first = await ingest.post(url, data=fields, headers=browser)
    clicks = await asyncio.gather(*(ingest.post(url, data=fields, headers=browser) for _ in range(2)))
    assert [a.status_code for a in (first, *clicks)] == [303] * 3
    assert {a.headers["location"] for a in (first, *clicks)} == {first.headers["location"]}
    assert "idempotent-replayed" not in first.headers
    assert [a.headers["idempotent-replayed"] for a in clicks] == ["true", "true"]
    lead_id = httpx.URL(first.headers["location"]).params["lead_id"]

    async def history() -> list[str]:
        lead = (await ingest.get(f"/v1/leads/{lead_id}", headers=ADMIN)).json()
        return [h["type"] for h in lead["history"]]

    assert await history() == []  # the capture alone
    script = await ingest.post(url, data=fields, headers={"Origin": ORIGIN, "Accept": "application/json"})
    assert script.status_code == 202 and script.json()["lead_id"] == lead_id

    changed = await ingest.post(url, data=fields | {"message": "И ещё вопрос"}, headers=browser)
    assert changed.status_code == 303 and await history() == ["form_submitted"], "another post"
    app = ingest._transport.app  # type: ignore[attr-defined]
    office = httpx.ASGITransport(app=app, client=("192.0.2.44", 40000))
    async with httpx.AsyncClient(transport=office, base_url="http://ingest") as colleague:
        elsewhere = await colleague.post(url, data=fields, headers=browser)
    assert elsewhere.status_code == 303 and await history() == ["form_submitted"] * 2, "another address"

    db = ingest_db(ingest)
    async with db.transaction() as session:  # the first post, eleven minutes ago
        await session.execute(
            text(
                "UPDATE idempotency_keys SET created_at = now() - interval '11 minutes'"
                " WHERE source_id = :s AND key LIKE 'repeat:%'"
            ),
            {"s": source["id"]},
        )
    later = await ingest.post(url, data=fields, headers=browser)
    assert later.status_code == 303 and "idempotent-replayed" not in later.headers
    assert await history() == ["form_submitted"] * 3, "the same post after the window is a new one"


async def test_the_keys_of_form_posts_go_with_the_purge_once_their_minutes_have_passed(
    ingest: httpx.AsyncClient,
) -> None:
    """They are digests of what the person sent: kept no longer than they serve."""
    source = await form_source(ingest)
    url, headers = f"/v1/forms/{source['id']}", {"Origin": ORIGIN, "Accept": "application/json"}
    for n, key in enumerate(("old-click", "new-click")):
        email = f"k{n}-{uuid.uuid4().hex[:8]}@example.kz"
        answer = await ingest.post(url, data={"email": email}, headers=headers | {"Idempotency-Key": key})
        assert answer.status_code == 202
    db = ingest_db(ingest)
    query = "SELECT key FROM idempotency_keys WHERE source_id = :s ORDER BY key"
    async with db.transaction() as session:
        keys = [key for (key,) in await session.execute(text(query), {"s": source["id"]})]
        assert keys[:2] == ["new-click", "old-click"] and len(keys) == 4
        await session.execute(
            text(
                "UPDATE idempotency_keys SET created_at = now() - interval '20 minutes'"
                " WHERE source_id = :s AND key IN ('old-click', :repeat)"
            ),
            {"s": source["id"], "repeat": keys[2]},
        )
    await idempotency.forget_older_than(db, hours=48)
    async with db.transaction() as session:
        left = [key for (key,) in await session.execute(text(query), {"s": source["id"]})]
    assert left == ["new-click", "old-click", keys[3]]


async def test_a_long_page_address_sent_by_the_pages_script_is_cut_not_the_lead_lost(
    ingest: httpx.AsyncClient,
) -> None:
    """`page_url`, `referrer` and the `utm_*` tags are what the page's script sends, not what
    the visitor typed: one past its bound (an ad's URL with long click ids) was a 422 naming a
    field the visitor never saw, and the lead was lost."""
    source = await form_source(ingest)
    long_url = f"{ORIGIN}/contact?utm_source=ads&gclid=" + "x" * 2500
    fields = {
        "email": f"l-{uuid.uuid4().hex[:8]}@example.kz",
        "page_url": long_url,
        "referrer": "https://www.google.com/search?q=" + "y" * 2500,
        "utm_campaign": "c" * 300,
    }
    headers = {"Origin": ORIGIN, "Accept": "application/json"}
    answer = await ingest.post(f"/v1/forms/{source['id']}", data=fields, headers=headers)
    assert answer.status_code == 202, answer.text
    attributes = (await ingest.get(f"/v1/leads/{answer.json()['lead_id']}", headers=ADMIN)).json()[
        "attributes"
    ]
    assert attributes["page_url"] == long_url[:2000] and len(attributes["referrer"]) == 2000
    assert attributes["utm"] == {"source": "ads", "campaign": "c" * 200}
