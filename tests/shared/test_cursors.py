"""Every keyset list of every service, given a cursor it did not give out: a value out of its
column's range (a moment past the year 9999 in UTC, an int beyond int4), another shape, not a
UUID, a value written otherwise than the list writes it ("+40", a uuid in braces). Each is a
422 naming `cursor`, never a 500; the edges of the ranges are still pages. The lists come from
each service's OpenAPI document, so a new one must be added here."""

import base64
import json
import uuid
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack

import httpx
import pytest

from services.ingest.app import create_app as ingest_app
from services.ingest.config import IngestSettings
from services.metrics.app import create_app as metrics_app
from services.metrics.config import MetricsSettings
from services.nurture.app import create_app as nurture_app
from services.nurture.config import NurtureSettings
from services.scoring.app import create_app as scoring_app
from services.scoring.config import ScoringSettings
from tests.conftest import ADMIN, VIEWER, Servers, running

APPS = {
    "ingest": (ingest_app, IngestSettings),
    "scoring": (scoring_app, ScoringSettings),
    "nurture": (nurture_app, NurtureSettings),
    "metrics": (metrics_app, MetricsSettings),
}
LATE, EARLY = "9999-12-31T23:59:59-14:00", "0001-01-01T00:00:00+14:00"  # past year 9999 / before 1 in UTC
LAST, FIRST = "9999-12-31T23:59:59+00:00", "0001-01-01T00:00:00+00:00"
ID = "00000000-0000-0000-0000-000000000000"
BY_CREATION = {  # (created_at, id)
    "past year 9999": [LATE, ID],
    "before year 1": [EARLY, ID],
    "no offset": ["2031-01-01T00:00:00", ID],
    "not a uuid": [FIRST, "not-a-uuid"],
    "a number, not a string": [FIRST, 7],
    "one part short": [FIRST],
    "a uuid in braces": [FIRST, "{" + ID + "}"],
    "a uuid without its dashes": [FIRST, ID.replace("-", "")],
}
TIMELINE = {  # (due_at, step, id)
    "past year 9999": [LATE, "0", ID],
    "a 23-digit step": [FIRST, "1" * 23, ID],
    "a step past int4": [FIRST, str(2**31), ID],
    "a step below int4": [FIRST, str(-(2**31) - 1), ID],
    "a step not a number": [FIRST, "one", ID],
    "a step with a plus": [FIRST, "+1", ID],
    "a step in Arabic-Indic digits": [FIRST, "\u0664", ID],
}
PERIODS = {  # (period_start, id)
    "year 10000": ["10000-01-01", ID],
    "a moment, not a day": [LATE, ID],
    "not a uuid": ["2031-01-01", "x"],
}
SCORES = {  # "score:lead_id", scoring's own cursor
    "a score past int4": f"{2**31}:{ID}",
    "a score below int4": f"{-(2**31) - 1}:{ID}",
    "a 23-digit score": f"{'9' * 23}:{ID}",
    "not a uuid": "10:x",
    # the forms int() and UUID() take that the list never writes (an outside review found them)
    "a score after a space": f" 40:{ID}",
    "a score with a plus": f"+40:{ID}",
    "a score with an underscore": f"4_0:{ID}",
    "a score in Arabic-Indic digits": f"\u0664\u0660:{ID}",
    "a uuid in braces": f"40:{{{ID}}}",
}
# The ends of each range: still cursors, of pages with nothing past them.
CREATION_EDGES = [[LAST, ID], [FIRST, ID]]
TIMELINE_EDGES = [[LAST, str(2**31 - 1), ID], [FIRST, str(-(2**31)), ID]]
PERIOD_EDGES = [["9999-12-31", ID], ["0001-01-01", ID]]
SCORE_EDGES = [f"{2**31 - 1}:{ID}", f"{-(2**31)}:{ID}"]
LISTS: dict[tuple[str, str], tuple[dict[str, object], list[object]]] = {
    ("ingest", "/v1/sources"): (BY_CREATION, CREATION_EDGES),
    ("nurture", "/v1/reps"): (BY_CREATION, CREATION_EDGES),
    ("nurture", "/v1/webhooks"): (BY_CREATION, CREATION_EDGES),
    ("nurture", "/v1/webhooks/{endpoint_id}/deliveries"): (BY_CREATION, CREATION_EDGES),
    ("nurture", "/v1/reps/{rep_id}/deliveries"): (BY_CREATION, CREATION_EDGES),
    ("nurture", "/v1/reps/{rep_id}/leads"): (BY_CREATION, CREATION_EDGES),  # (assigned_at, lead_id)
    ("nurture", "/v1/leads/{lead_id}/touches"): (TIMELINE, TIMELINE_EDGES),
    ("metrics", "/v1/spend"): (PERIODS, PERIOD_EDGES),
    ("scoring", "/v1/leads"): (SCORES, SCORE_EDGES),
}
VIEWERS_LISTS = {("scoring", "/v1/leads"), ("nurture", "/v1/leads/{lead_id}/touches")}


def encoded(parts: object) -> str:
    text = parts if isinstance(parts, str) else json.dumps(parts)
    return base64.urlsafe_b64encode(text.encode()).decode()


@pytest.fixture(scope="module")
async def clients(servers: Servers) -> AsyncIterator[dict[str, httpx.AsyncClient]]:
    async with AsyncExitStack() as stack:
        yield {
            name: await stack.enter_async_context(running(create(servers.settings(settings))))
            for name, (create, settings) in APPS.items()
        }


@pytest.fixture(scope="module")
async def endpoint_id(clients: dict[str, httpx.AsyncClient]) -> str:
    body = {"url": "https://hooks.example.kz/cursors", "events": ["lead.hot"]}
    answer = await clients["nurture"].post("/v1/webhooks", json=body, headers=ADMIN)
    assert answer.status_code == 201, answer.text
    return str(answer.json()["id"])


@pytest.fixture(scope="module")
async def rep_id(clients: dict[str, httpx.AsyncClient]) -> str:
    body = {"name": "Cursor rep", "webhook_url": "https://hooks.example.kz/rep"}
    answer = await clients["nurture"].post("/v1/reps", json=body, headers=ADMIN)
    assert answer.status_code == 201, answer.text
    return str(answer.json()["id"])


def url(path: str, endpoint_id: str, rep_id: str) -> str:
    return path.format(endpoint_id=endpoint_id, rep_id=rep_id, lead_id=uuid.uuid4())


async def test_every_list_with_a_cursor_is_here(clients: dict[str, httpx.AsyncClient]) -> None:
    paged = set()
    for name, client in clients.items():
        for path, operations in (await client.get("/openapi.json")).json()["paths"].items():
            parameters = operations.get("get", {}).get("parameters", [])
            if any(p["name"] == "cursor" for p in parameters):
                paged.add((name, path))
    assert paged == set(LISTS)


@pytest.mark.parametrize(
    ("service", "path", "case"),
    [(service, path, case) for (service, path), (cases, _) in LISTS.items() for case in cases],
)
async def test_a_tampered_cursor_is_refused_not_a_server_error(
    clients: dict[str, httpx.AsyncClient], endpoint_id: str, rep_id: str, service: str, path: str, case: str
) -> None:
    cursor = encoded(LISTS[service, path][0][case])
    headers = VIEWER if (service, path) in VIEWERS_LISTS else ADMIN  # as the viewer where it reads
    answer = await clients[service].get(
        url(path, endpoint_id, rep_id), params={"cursor": cursor}, headers=headers
    )
    assert answer.status_code == 422, answer.text
    assert answer.headers["content-type"].startswith("application/problem+json")
    assert [(e["field"], e["reason"]) for e in answer.json()["errors"]] == [
        ("cursor", "not a cursor this list gave")
    ]


@pytest.mark.parametrize(
    ("service", "path", "cursor"),
    [(service, path, encoded(edge)) for (service, path), (_, edges) in LISTS.items() for edge in edges],
)
async def test_the_ends_of_each_range_are_still_cursors(
    clients: dict[str, httpx.AsyncClient],
    endpoint_id: str,
    rep_id: str,
    service: str,
    path: str,
    cursor: str,
) -> None:
    answer = await clients[service].get(
        url(path, endpoint_id, rep_id), params={"cursor": cursor}, headers=ADMIN
    )
    assert answer.status_code == 200, answer.text
