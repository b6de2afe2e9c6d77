"""A Russian-locale Excel's file lost its consent and every column of its own: "Согласие на
рассылку" was reported "not imported" with no word that it is `consent` (expo leads who said
"да" got no follow-up), and "Дата обращения", "Менеджер", "Примечание" were thrown away while a
Latin-named column was kept as a custom field (found by a marketer's review). A custom field's
name may be letters of any script now; a column's or a form field's spaces become `_`."""

import uuid
from typing import Any

import httpx
import pytest

from services.ingest.field_names import field_named
from services.ingest.forms import custom_keys, lead_from_form
from services.ingest.import_headers import unknown_headers
from services.ingest.normalize import custom_key, is_custom_key
from tests.conftest import ADMIN, eventually
from tests.helpers import create_source, post_lead
from tests.ingest.test_imports import finished_report


@pytest.mark.parametrize(
    "header",
    [
        "Согласие на рассылку",
        "согласие на получение рассылки",
        "Подписка",
        "Подписка на рассылку",
        "Жарнамаға келісім",
        "Abunə",
        "ABUNƏLİK",
        "Marketing consent",
        "Newsletter",
        "opt-in",
        "consent",
    ],
)
def test_a_column_that_asks_for_the_marketing_opt_in_is_consent(header: str) -> None:
    assert field_named(header) == "consent"


@pytest.mark.parametrize(
    "header",
    [
        # a form's compulsory box for the processing of personal data is no opt-in to mailings
        "Согласие",
        "Согласие на обработку",
        "Согласие на обработку персональных данных",
        "Келісім",
        "Razılıq",
        "Agreement",
    ],
)
def test_a_column_that_may_mean_another_consent_is_not_taken_as_the_opt_in(header: str) -> None:
    assert field_named(header) is None


@pytest.mark.parametrize(
    ("name", "key"),
    [
        ("booth_notes", "booth_notes"),
        ("Менеджер", "Менеджер"),
        ("Дата обращения", "Дата_обращения"),
        ("  Дата  обращения ", "Дата_обращения"),
        ("Дата\u00a0обращения", "Дата_обращения"),
        ("Қала-2", "Қала-2"),
        ("Qeyd.əlavə", "Qeyd.əlavə"),
        ("备注", "备注"),
        ("नाम", "नाम"),  # a vowel sign is a mark on its letter
        ("Мобильныи\u0306", "Мобильный"),  # a Mac's й, a breve on и: composed
        ("x" * 64, "x" * 64),
        # no custom field's name: punctuation, too long, invisible, nothing
        ("Сумма, ₸", None),
        ("Сумма (руб.)", None),
        ("a/b", None),
        ('<img src=x onerror="alert(1)">', None),
        ("x" * 65, None),
        ("Note\ufe0f", None),  # a variation selector
        ("\u3164", None),  # a Hangul filler: a letter that shows nothing
        ("a\u200bb", None),
        ("\u0301a", None),  # a mark on no letter
        (" ", None),
    ],
)
def test_a_columns_name_as_a_custom_fields(name: str, key: str | None) -> None:
    assert custom_key(name) == key


def test_the_api_takes_a_custom_fields_name_as_it_is_or_refuses_it() -> None:
    assert all(is_custom_key(k) for k in ("Менеджер", "Дата_обращения", "booth.notes", "_x", "1"))
    assert not any(is_custom_key(k) for k in ("Дата обращения", "и\u0306", "", "x" * 65, "a\nb", "a\x00"))


def test_two_columns_naming_one_custom_field_keep_the_first_only() -> None:
    """Without a word, the second's values went over the first's."""
    header = ["email", "Дата визита", "Дата_визита", "Примечание", "_hp"]
    assert custom_keys(header) == {
        "email": "email",
        "Дата визита": "Дата_визита",
        "Примечание": "Примечание",
    }
    assert unknown_headers(header) == [
        {"header": "Дата визита", "kept_as": "custom.Дата_визита", "did_you_mean": None},
        {"header": "Дата_визита", "kept_as": None, "did_you_mean": None},
        {"header": "Примечание", "kept_as": "custom.Примечание", "did_you_mean": None},
        {"header": "_hp", "kept_as": None, "did_you_mean": None},
    ]
    row = list(zip(header, ["a@example.kz", "12.03.2026", "", "VIP", "x"], strict=True))
    assert lead_from_form(row, None).custom == {"Дата_визита": "12.03.2026", "Примечание": "VIP"}
    empty_first = list(zip(header, ["a@example.kz", "", "13.03.2026", "", ""], strict=True))
    assert lead_from_form(empty_first, None).custom == {}, "as the report says: not imported"


def test_a_cyrillic_column_a_lead_field_names_is_told() -> None:
    assert unknown_headers(["email", "Телефон офиса", "Email менеджера", "Имя менеджера"]) == [
        {"header": "Телефон офиса", "kept_as": "custom.Телефон_офиса", "did_you_mean": "phone"},
        {"header": "Email менеджера", "kept_as": "custom.Email_менеджера", "did_you_mean": "email"},
        {"header": "Имя менеджера", "kept_as": "custom.Имя_менеджера", "did_you_mean": None},
    ]


async def lead_with_phone(ingest: httpx.AsyncClient, key: str, phone: str) -> dict[str, Any]:
    found = await ingest.post(
        "/v1/activities", json={"phone": phone, "type": "page_view"}, headers={"X-Source-Key": key}
    )
    assert found.status_code == 202, found.text
    return dict((await ingest.get(f"/v1/leads/{found.json()['lead_id']}", headers=ADMIN)).json())


def kz_phone() -> str:
    return f"+7701{uuid.uuid4().int % 10**7:07d}"


async def test_a_russian_excels_file_keeps_its_consent_its_columns_and_names_its_people_right(
    ingest: httpx.AsyncClient,
) -> None:
    source = await create_source(ingest, channel="import", default_region="KZ")
    key = {"X-Source-Key": source["key"]}
    phone = kz_phone()
    body = (
        "sep=;\r\n"
        "ФИО;Телефон;Согласие на рассылку;Дата обращения;Менеджер;Примечание;Сумма (руб.)\r\n"
        f"Иванова Анна Сергеевна;{phone};да;12.03.2026;Ержан;VIP;1500\r\n"
    ).encode("cp1251")
    started = await ingest.post(
        "/v1/imports",
        params={"encoding": "cp1251"},
        content=body,
        headers={**key, "content-type": "text/csv"},
    )
    assert started.status_code == 202, started.text

    async def finished() -> dict[str, Any] | None:
        report = (await ingest.get(started.json()["status_url"], headers=key)).json()
        return report if report["status"] != "running" else None

    report = await eventually(finished, timeout=30)
    assert (report["status"], report["accepted"], report["rejected"]) == ("done", 1, 0), report
    assert report["unknown_headers"] == [  # "Дата обращения" dates the enquiry (test_enquiry_dates)
        {"header": "Менеджер", "kept_as": "custom.Менеджер", "did_you_mean": None},
        {"header": "Примечание", "kept_as": "custom.Примечание", "did_you_mean": None},
        {"header": "Сумма (руб.)", "kept_as": None, "did_you_mean": None},
    ]
    lead = await lead_with_phone(ingest, source["key"], phone)
    attributes = lead["attributes"]
    assert (attributes["first_name"], attributes["last_name"]) == ("Анна Сергеевна", "Иванова")
    assert attributes["consent"] is True
    assert attributes["custom"] == {"Менеджер": "Ержан", "Примечание": "VIP"}
    assert lead["captured_at"] == "2026-03-12T00:00:00Z"


async def test_a_form_with_a_fio_field_a_subscription_box_and_fields_of_its_own(
    ingest: httpx.AsyncClient,
) -> None:
    source = await create_source(ingest, channel="landing_page", default_region="KZ")
    phone = kz_phone()
    fields = {
        "ФИО": "Анна Сергеевна Иванова",
        "Телефон": phone,
        "Подписка": "on",
        "Удобное время": "после 18:00",
        "Откуда узнали": "Instagram",
    }
    posted = await ingest.post(
        f"/v1/forms/{source['id']}", data=fields, headers={"Accept": "application/json"}
    )
    assert posted.status_code == 202, posted.text
    lead = (await ingest.get(f"/v1/leads/{posted.json()['lead_id']}", headers=ADMIN)).json()
    attributes = lead["attributes"]
    assert (attributes["first_name"], attributes["last_name"], attributes["consent"]) == (
        "Анна Сергеевна",
        "Иванова",
        True,
    )
    assert attributes["custom"] == {"Удобное_время": "после 18:00", "Откуда_узнали": "Instagram"}


async def test_an_integration_may_name_custom_fields_in_any_script(ingest: httpx.AsyncClient) -> None:
    key = (await create_source(ingest))["key"]
    custom = {"Менеджер": "Ержан", "Qeyd": "VIP", "Дата_обращения": "2026-03-12"}
    sent = await post_lead(ingest, key, email=f"c-{uuid.uuid4().hex[:8]}@example.kz", custom=custom)
    assert sent.status_code == 202, sent.text
    lead = (await ingest.get(f"/v1/leads/{sent.json()['lead_id']}", headers=ADMIN)).json()
    assert lead["attributes"]["custom"] == custom


@pytest.mark.parametrize("name", ["Дата обращения", "Note\ufe0f", "a\u200bb", "x" * 65, "Сумма,₸"])
async def test_an_integrations_custom_field_name_no_field_may_have_is_refused_naming_it(
    ingest: httpx.AsyncClient, name: str
) -> None:
    key = (await create_source(ingest))["key"]
    refused = await post_lead(ingest, key, email="c@example.kz", custom={name: 1})
    assert refused.status_code == 422, refused.text
    [error] = refused.json()["errors"]
    assert error["field"].startswith(f"custom.{name}"), error
    assert "letters of any script, digits, `_`, `.` and `-`" in error["reason"], error


async def test_the_report_and_the_leads_agree_on_an_import_in_utf8(ingest: httpx.AsyncClient) -> None:
    """UTF-8 with Kazakh and Azerbaijani columns of their own."""
    source = await create_source(ingest, channel="import", default_region="KZ")
    key = {"X-Source-Key": source["key"]}
    phone = kz_phone()
    body = f"Телефон,Қала ауданы,Qeyd\n{phone},Алмалы,zəng et\n".encode()
    report = await finished_report(ingest, key, body)
    assert [h["kept_as"] for h in report["unknown_headers"]] == ["custom.Қала_ауданы", "custom.Qeyd"]
    attributes = (await lead_with_phone(ingest, source["key"], phone))["attributes"]
    assert attributes["custom"] == {"Қала_ауданы": "Алмалы", "Qeyd": "zəng et"}
