"""A JSON body that cannot be read at all is a 422 naming the body and saying why, as a
malformed one is (the field `body`, not the parser's character position): nested past what
the parser takes, or not UTF-8 (FastAPI answered a bare 400, "There was an error parsing the
body")."""

import httpx
import pytest

from tests.helpers import create_source


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (
            b'{"email": "a@example.kz", "custom": ' + b"[" * 20_000 + b"]" * 20_000 + b"}",
            "is nested too deeply",
        ),
        ('{"email": "a@example.kz", "first_name": "Zoé"}'.encode("latin-1"), "is not valid UTF-8"),
    ],
    ids=["nested", "latin"],
)
async def test_a_body_that_cannot_be_read_is_422_naming_it(
    ingest: httpx.AsyncClient, body: bytes, reason: str
) -> None:
    key = (await create_source(ingest))["key"]
    response = await ingest.post(
        "/v1/leads", content=body, headers={"X-Source-Key": key, "content-type": "application/json"}
    )
    assert response.status_code == 422, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["errors"] == [{"field": "body", "reason": reason, "type": "value_error"}]


async def test_malformed_json_is_422_naming_the_body_not_a_position(ingest: httpx.AsyncClient) -> None:
    key = (await create_source(ingest))["key"]
    response = await ingest.post(
        "/v1/leads", content=b'{"email":', headers={"X-Source-Key": key, "content-type": "application/json"}
    )
    assert response.status_code == 422, response.text
    assert response.headers["content-type"] == "application/problem+json"
    reason = "is not valid JSON: Expecting value at character 9"
    assert response.json()["errors"] == [{"field": "body", "reason": reason, "type": "json_invalid"}]
