"""NaN and Infinity, which JSON parsers here take, are no numbers of a lead: a 422 naming the
field and saying so, not a bound they were never near ("less than or equal to 1e12")."""

import httpx
import pytest

from tests.helpers import create_source

FINITE = "Input should be a finite number"


@pytest.mark.parametrize(
    ("body", "field"),
    [
        (b'{"email": "n@example.kz", "budget": NaN}', "budget"),
        (b'{"email": "n@example.kz", "budget": Infinity}', "budget"),
        (b'{"email": "n@example.kz", "custom": {"score": NaN}}', "custom.score"),
        (b'{"email": "n@example.kz", "custom": {"score": -Infinity}}', "custom.score"),
    ],
)
async def test_a_lead_with_a_number_that_is_not_finite_is_refused(
    ingest: httpx.AsyncClient, body: bytes, field: str
) -> None:
    key = (await create_source(ingest))["key"]
    response = await ingest.post(
        "/v1/leads", content=body, headers={"X-Source-Key": key, "content-type": "application/json"}
    )
    assert response.status_code == 422, response.text
    reasons = {(e["field"], e["reason"]) for e in response.json()["errors"]}
    # a custom value may be text, a number or a yes/no: each kind it is not is named after it
    assert any(f in (field, f"{field}.float") and reason == FINITE for f, reason in reasons), reasons


async def test_an_outcome_of_no_finite_amount_is_refused(ingest: httpx.AsyncClient) -> None:
    key = (await create_source(ingest, scope="history"))["key"]
    body = b'{"lead_id": "00000000-0000-4000-8000-000000000001", "type": "won", "amount": Infinity}'
    response = await ingest.post(
        "/v1/outcomes", content=body, headers={"X-Source-Key": key, "content-type": "application/json"}
    )
    assert response.status_code == 422, response.text
    assert {(e["field"], e["reason"]) for e in response.json()["errors"]} == {("amount", FINITE)}
