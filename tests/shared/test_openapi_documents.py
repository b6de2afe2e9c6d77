"""What each service's OpenAPI document says a route answers, read as a generated client reads it:
every error is the problem+json that is really sent (FastAPI declared its own HTTPValidationError
as application/json), the tokens and keys a route asks for are its security, and the bodies a
route reads by hand (a CSV, a form) are declared so Swagger's "Try it out" can send them. The
documents are the real apps' (as tests/shared/test_access.py makes them), and the error answers
they are checked against come from the running ingest."""

import uuid
from collections.abc import AsyncIterator
from typing import Any

import httpx
import jsonschema_rs
import pytest

from services.ingest.app import create_app as create_ingest
from services.ingest.config import IngestSettings
from tests.conftest import ADMIN, ANONYMOUS, VIEWER, Servers, running
from tests.helpers import create_source
from tests.shared.test_access import APPS, PUBLIC, SOURCE_KEYED, VIEWER_READS

PROBLEM_JSON = "application/problem+json"
PROBLEM = {"$ref": "#/components/schemas/Problem"}
Document = dict[str, Any]


@pytest.fixture(scope="module")
def documents(servers: Servers) -> dict[str, Document]:
    return {name: create(servers.settings(settings)).openapi() for name, (create, settings) in APPS.items()}


@pytest.fixture(scope="module")
async def ingest(servers: Servers) -> AsyncIterator[httpx.AsyncClient]:
    """Ingest with a small body limit and two wrong keys a minute per client, so each error
    the document declares can be met cheaply."""
    settings = servers.settings(IngestSettings, max_body_bytes=4096, rate_limit_per_ip_other="2/minute")
    async with running(create_ingest(settings)) as client:
        yield client


def each_operation(documents: dict[str, Document]) -> list[tuple[str, str, str, dict[str, Any]]]:
    return [
        (service, method.upper(), path, operation)
        for service, document in documents.items()
        for path, operations in document["paths"].items()
        for method, operation in operations.items()
    ]


def declared(document: Document, method: str, path: str, status: int) -> Any:
    """The schema the document declares for this answer, whole (its references resolvable)."""
    response = document["paths"][path][method.lower()]["responses"].get(str(status))
    assert response is not None, f"{method} {path} declares no {status}"
    media = response["content"][PROBLEM_JSON if status >= 400 else "application/json"]
    return {**media["schema"], "components": document["components"]}


def assert_answers_as_declared(document: Document, method: str, path: str, answer: httpx.Response) -> None:
    schema = declared(document, method, path, answer.status_code)
    wanted = PROBLEM_JSON if answer.status_code >= 400 else "application/json"
    assert answer.headers["content-type"] == wanted, (path, answer.text)
    errors = [e.message for e in jsonschema_rs.Draft202012Validator(schema).iter_errors(answer.json())]
    assert not errors, (method, path, answer.status_code, answer.json(), errors)


def test_every_error_declared_is_the_problem_that_is_sent_and_tokens_are_asked_for(
    documents: dict[str, Document],
) -> None:
    wrong, tried = [], 0
    for service, method, path, operation in each_operation(documents):
        where, responses = f"{service} {method} {path}", operation["responses"]
        for status, response in responses.items():
            content = response.get("content", {})
            # A form's visitor is shown a page in their own language; a script gets the problem.
            pages = {"text/html"} if (service, method, path) in PUBLIC else set()
            if int(status) >= 400 and (
                content.get(PROBLEM_JSON) != {"schema": PROBLEM} or set(content) - {PROBLEM_JSON, *pages}
            ):
                wrong.append(f"{where} {status}: {content}")
        needed = {"422", "503"}  # every route checks its parameters and uses its database
        if (service, method, path) not in PUBLIC:
            needed |= {"401"}
            if not operation.get("security") or {} in operation["security"]:
                wrong.append(f"{where}: no token or key required: {operation.get('security')}")
        keyed = service == "ingest" and SOURCE_KEYED.match(path)
        if (service, method, path) not in PUBLIC | VIEWER_READS and not keyed:
            needed |= {"403"}  # the viewer token is told it only reads
        if "requestBody" in operation:
            needed |= {"413", "415"}
        if missing := needed - set(responses):
            wrong.append(f"{where}: {sorted(missing)} not declared")
        tried += 1
    assert not wrong, "\n".join(wrong)
    assert tried > 70, "every service's operations were read"
    for document in documents.values():
        assert "HTTPValidationError" not in document["components"]["schemas"]


def test_a_source_key_is_a_security_scheme_and_the_acknowledge_bearer_is_optional(
    documents: dict[str, Document],
) -> None:
    ingest = documents["ingest"]
    schemes = ingest["components"]["securitySchemes"]
    assert schemes["SourceKey"] == {"type": "apiKey", "in": "header", "name": "X-Source-Key"}
    assert schemes["TelegramSecretToken"]["name"] == "X-Telegram-Bot-Api-Secret-Token"
    for path, operations in ingest["paths"].items():
        for operation in operations.values():
            headers = {p["name"].lower() for p in operation.get("parameters", []) if p["in"] == "header"}
            assert not headers & {"x-source-key", "x-telegram-bot-api-secret-token"}, path
    assert ingest["paths"]["/v1/leads"]["post"]["security"] == [{"SourceKey": []}]
    telegram = ingest["paths"]["/v1/chatbots/{source_id}/telegram"]["post"]
    assert telegram["security"] == [{"TelegramSecretToken": []}]
    acknowledge = documents["nurture"]["paths"]["/v1/leads/{lead_id}/acknowledge"]["post"]
    assert acknowledge["security"] == [{}, {"HTTPBearer": []}]


def test_the_csv_of_an_import_and_the_fields_of_a_form_are_declared_bodies(
    documents: dict[str, Document],
) -> None:
    paths = documents["ingest"]["paths"]
    imports = paths["/v1/imports"]["post"]["requestBody"]
    assert imports["required"] and set(imports["content"]) == {"text/csv"}
    assert "delimiter" in {p["name"] for p in paths["/v1/imports"]["post"]["parameters"]}
    form = paths["/v1/forms/{source_id}"]["post"]["requestBody"]
    assert set(form["content"]) == {"application/x-www-form-urlencoded", "multipart/form-data"}
    for media in form["content"].values():
        assert media["schema"]["type"] == "object"
        assert media["schema"]["additionalProperties"] == {"type": "string"}


async def test_real_error_answers_are_the_problems_the_document_declares(
    ingest: httpx.AsyncClient, documents: dict[str, Document]
) -> None:
    document = documents["ingest"]
    source = await create_source(ingest)
    key = {"X-Source-Key": source["key"]}
    answers = [
        ("POST", "/v1/leads", await ingest.post("/v1/leads", json={"name": "No contact"}, headers=key)),
        ("POST", "/v1/leads", await ingest.post("/v1/leads", json={"email": "x"}, headers=key)),
        ("POST", "/v1/leads", await ingest.post("/v1/leads", content=b"email=a", headers=key)),
        ("POST", "/v1/leads", await ingest.post("/v1/leads", json={"notes": "x" * 5000}, headers=key)),
        ("POST", "/v1/sources", await ingest.post("/v1/sources", json={}, headers=VIEWER)),
        ("GET", "/v1/sources", await ingest.get("/v1/sources", params={"limt": "5"}, headers=ADMIN)),
        ("GET", "/v1/sources", await ingest.get("/v1/sources", headers=ANONYMOUS)),
    ]
    # Wrong keys count against the client's address: 401s, then a 429 with Retry-After.
    for _ in range(3):
        wrong = await ingest.post(
            "/v1/leads", json={"email": "a@example.com"}, headers={"X-Source-Key": "lfk_no"}
        )
        answers.append(("POST", "/v1/leads", wrong))
    statuses = [answer.status_code for _, _, answer in answers]
    assert statuses == [422, 422, 415, 413, 403, 422, 401, 401, 401, 429], [a.text for _, _, a in answers]
    for method, path, answer in answers:
        assert_answers_as_declared(document, method, path, answer)
    assert answers[-1][2].headers["retry-after"].isdigit()


async def test_a_chatbot_message_is_answered_as_its_response_model_declares(
    ingest: httpx.AsyncClient, documents: dict[str, Document]
) -> None:
    document = documents["ingest"]
    path = "/v1/chatbots/{source_id}/messages"
    assert declared(document, "POST", path, 202)["$ref"] == "#/components/schemas/ChatRecorded"
    source = await create_source(ingest, channel="live_chat")
    url, key = f"/v1/chatbots/{source['id']}/messages", {"X-Source-Key": source["key"]}
    conversation = uuid.uuid4().hex
    for body in ({"text": "Salam"}, {"contact": {"email": f"c-{conversation[:8]}@example.az"}}):
        answer = await ingest.post(url, json={"conversation_id": conversation, **body}, headers=key)
        assert answer.status_code == 202, answer.text
        assert_answers_as_declared(document, "POST", path, answer)
    assert answer.json()["lead_id"] and answer.json()["status"] == "recorded"
    telegram = document["paths"]["/v1/chatbots/{source_id}/telegram"]["post"]["responses"]
    assert "content" not in telegram["200"], "an update not recorded is answered with no body"
    assert (
        telegram["202"]["content"]["application/json"]["schema"]["$ref"]
        == "#/components/schemas/ChatRecorded"
    )


def test_the_leads_of_a_rep_declare_an_unknown_rep_and_a_bounded_page(documents: dict[str, Document]) -> None:
    operation = documents["nurture"]["paths"]["/v1/reps/{rep_id}/leads"]["get"]
    assert operation["responses"]["404"]["content"] == {PROBLEM_JSON: {"schema": PROBLEM}}
    limit = next(p for p in operation["parameters"] if p["name"] == "limit")
    assert limit["schema"]["maximum"] == 500
