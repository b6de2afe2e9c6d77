"""The form snippet showed a source's extra required fields to visitors by their code name
("company_size", "job_title") (found by a marketer's review). Each now has a label: the
source's own in the form's language (`field_labels`), else the built-in one, else the source's
own in English, else the name made readable."""

import re
from typing import Any

import httpx
import pytest

from services.ingest.embed import readable
from tests.conftest import ADMIN


def labels(snippet: str) -> dict[str, str]:
    """Each field's label, by the field's name, as the visitor sees it."""
    found = re.findall(r'<label>([^<]*) <(?:input|textarea) [^>]*name="([^"]+)"', snippet)
    return {name: label for label, name in found}


async def source_with(ingest: httpx.AsyncClient, **settings: Any) -> dict[str, Any]:
    body = {"name": "Astana landing", "channel": "landing_page", **settings}
    created = await ingest.post("/v1/sources", headers=ADMIN, json=body)
    assert created.status_code == 201, created.text
    return dict(created.json())


async def embedded(ingest: httpx.AsyncClient, source: dict[str, Any], language: str) -> dict[str, str]:
    answer = await ingest.get(f"/v1/sources/{source['id']}/embed?language={language}", headers=ADMIN)
    assert answer.status_code == 200, answer.text
    return labels(answer.text)


@pytest.mark.parametrize(
    ("name", "label"),
    [("custom.company_size", "Company size"), ("is_decision_maker", "Is decision maker"), ("x", "X")],
)
def test_a_name_with_no_label_is_made_readable(name: str, label: str) -> None:
    assert readable(name) == label


async def test_extra_required_fields_are_labelled_in_the_forms_language(ingest: httpx.AsyncClient) -> None:
    required = ["phone", "company_size", "job_title", "city", "is_decision_maker", "birthday"]
    source = await source_with(
        ingest,
        required_fields=required,
        field_labels={
            "company_size": {"ru": "Сколько у вас сотрудников?", "en": "Employees"},
            "is_decision_maker": {"en": "Do you decide on the purchase?"},
            "phone": {"kk": "Ұялы телефон"},
        },
    )
    assert source["field_labels"]["company_size"]["en"] == "Employees"
    russian, kazakh, english = [await embedded(ingest, source, lang) for lang in ("ru", "kk", "en")]
    assert {name: russian[name] for name in required} == {
        "phone": "Телефон",
        "company_size": "Сколько у вас сотрудников?",  # the source's own
        "job_title": "Должность",  # built in
        "city": "Город",
        "is_decision_maker": "Do you decide on the purchase?",  # the source's, in English
        "birthday": "Birthday",  # the name made readable, never `birthday`
    }
    assert (kazakh["phone"], kazakh["company_size"], kazakh["city"]) == (
        "Ұялы телефон",
        "Компания көлемі",
        "Қала",
    )
    assert english["company_size"] == "Employees"
    assert not {label for label in (*russian.values(), *kazakh.values()) if "_" in label}


async def test_a_label_is_escaped_and_a_label_for_no_lead_field_or_language_is_refused(
    ingest: httpx.AsyncClient,
) -> None:
    source = await source_with(
        ingest, required_fields=["need"], field_labels={"need": {"en": "<b>Need</b> & why"}}
    )
    answer = await ingest.get(f"/v1/sources/{source['id']}/embed?language=en", headers=ADMIN)
    assert "&lt;b&gt;Need&lt;/b&gt; &amp; why" in answer.text and "<b>" not in answer.text
    for wrong, field in [
        ({"company_sise": {"en": "Employees"}}, "field_labels"),
        ({"company_size": {"de": "Mitarbeiter"}}, "field_labels.company_size.de"),
    ]:
        refused = await ingest.post(
            "/v1/sources", headers=ADMIN, json={"name": "x", "channel": "web_form", "field_labels": wrong}
        )
        assert refused.status_code == 422, refused.text
        assert refused.json()["errors"][0]["field"].startswith(field), refused.text
    patched = await ingest.patch(
        f"/v1/sources/{source['id']}", headers=ADMIN, json={"field_labels": {"need": {"ru": "Задача"}}}
    )
    assert patched.status_code == 200, patched.text
    assert (await embedded(ingest, source, "ru"))["need"] == "Задача"
