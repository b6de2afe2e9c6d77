"""Every refused field carries a type a program can act on, whatever the reason's words: a
landing page's fetch() showing the visitor its own message, a CRM sorting a batch's refusals.
The rules' own refusals were all `value_error`, and a batch item's or an import row's pydantic
errors lost their type."""

import httpx

from tests.conftest import eventually
from tests.helpers import create_source, post_lead


def types(problem: dict[str, object]) -> dict[str, str]:
    return {error["field"]: error["type"] for error in problem["errors"]}  # type: ignore[attr-defined,index]


async def test_a_leads_refusals_say_which_rule_they_broke(ingest: httpx.AsyncClient) -> None:
    source = await create_source(ingest, required_fields=["company"], default_region="KZ")
    key = source["key"]
    nothing = await post_lead(ingest, key, first_name="Aruzhan")
    bad = await post_lead(ingest, key, email="aruzhan@", phone="12", company="Qazaq Tea")
    long = await post_lead(ingest, key, email="a@example.kz", company="x" * 201)

    assert nothing.status_code == bad.status_code == long.status_code == 422
    assert types(nothing.json()) == {"email": "contact_missing", "company": "required_by_source"}
    assert types(bad.json()) == {"email": "email_invalid", "phone": "phone_invalid"}
    assert types(long.json()) == {"company": "string_too_long"}


async def test_a_batch_items_refusals_keep_their_types(ingest: httpx.AsyncClient) -> None:
    key = (await create_source(ingest))["key"]
    leads = [{"email": "a@"}, {"email": "b@example.kz", "first_name": "x" * 201}, {"phone": "+77015550101"}]
    answer = await ingest.post("/v1/leads:batch", json={"leads": leads}, headers={"X-Source-Key": key})

    assert answer.status_code == 200, answer.text
    results = answer.json()["results"]
    assert [[e["type"] for e in r.get("errors") or []] for r in results] == [
        ["email_invalid"],
        ["string_too_long"],
        [],
    ]


async def test_an_import_rows_refusals_keep_their_types(ingest: httpx.AsyncClient) -> None:
    key = (await create_source(ingest))["key"]
    rows = "email,phone,first_name\nnot-an-email,,A\n,,B\nc@example.kz,,C,extra\n"
    headers = {"X-Source-Key": key, "Content-Type": "text/csv"}
    started = (await ingest.post("/v1/imports", content=rows.encode(), headers=headers)).json()

    async def report() -> dict[str, object] | None:
        answer = (await ingest.get(started["status_url"], headers={"X-Source-Key": key})).json()
        return answer if answer["status"] != "running" else None

    done = await eventually(report)
    assert [[e["type"] for e in row["errors"]] for row in done["rejections"]] == [  # type: ignore[index]
        ["email_invalid"],
        ["contact_missing"],
        ["row_misfit"],
    ]
