"""Every door of every service, tried as an attacker would: with no token, a wrong one, or the
viewer token where the admin token is needed (a 403 saying so: the viewer is known, and
"missing or wrong" sent its holder looking for a typo). Only the routes a browser or a lead's
email or text must reach stay open (README "Security"); the operations come from each service's own
OpenAPI document, so a new route is checked the day it is added."""

import re
import uuid
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from services.ingest.app import create_app as ingest_app
from services.ingest.config import IngestSettings
from services.metrics.app import create_app as metrics_app
from services.metrics.config import MetricsSettings
from services.nurture.app import create_app as nurture_app
from services.nurture.config import NurtureSettings
from services.scoring.app import create_app as scoring_app
from services.scoring.config import ScoringSettings
from tests.conftest import ADMIN, ANONYMOUS, VIEWER, Servers, running

APPS = {
    "ingest": (ingest_app, IngestSettings),
    "scoring": (scoring_app, ScoringSettings),
    "nurture": (nurture_app, NurtureSettings),
    "metrics": (metrics_app, MetricsSettings),
}
# Open by design: a landing page's form, a rep's acknowledge link, a lead's unsubscribe link.
PUBLIC = {
    ("ingest", "POST", "/v1/forms/{source_id}"),
    ("nurture", "POST", "/v1/leads/{lead_id}/acknowledge"),
    ("nurture", "GET", "/v1/unsubscribe"),
    ("nurture", "POST", "/v1/unsubscribe"),
    ("nurture", "GET", "/v1/u/{code}"),  # the short link ending every SMS and messenger text
    ("nurture", "POST", "/v1/u/{code}"),
}
# Taken with a source's key (X-Source-Key, or Telegram's secret token), never with a bearer.
SOURCE_KEYED = re.compile(r"^/v1/(leads(:batch)?|activities|outcomes|consent|imports(/.*)?|chatbots/.*)$")
# What the viewer token reads: lead scores and rules, a lead's touches, the reports and the
# health page, and the figures each service gives that page (its outbox, its consumer's inbox;
# nurture's webhook failures).
VIEWER_READS = {
    ("scoring", "GET", "/v1/leads/{lead_id}"),
    ("scoring", "GET", "/v1/leads"),
    ("scoring", "GET", "/v1/rules"),
    ("nurture", "GET", "/v1/leads/{lead_id}/touches"),
    *(
        ("metrics", "GET", path)
        for path in (
            "/v1/funnel",
            "/v1/cac",
            "/v1/ltv",
            "/v1/retention",
            "/v1/speed-to-lead",
            "/v1/proposals",
            "/v1/spend",
        )
    ),
    ("metrics", "GET", "/v1/health"),
    ("nurture", "GET", "/v1/delivery-health"),
    *((service, "GET", "/v1/outbox") for service in ("ingest", "scoring", "nurture", "metrics")),
    *((service, "GET", "/v1/inbox") for service in ("scoring", "nurture", "metrics")),
}
WRONG = {"Authorization": "Bearer not-the-admin-token-at-all"}
VIEWER_ONLY_READS = "This needs the admin token; the viewer token only reads"


def operations(app: FastAPI) -> list[tuple[str, str]]:
    return [(method.upper(), path) for path, ops in app.openapi()["paths"].items() for method in ops]


@pytest.fixture(scope="module")
async def clients(servers: Servers) -> AsyncIterator[dict[str, tuple[FastAPI, httpx.AsyncClient]]]:
    opened: dict[str, tuple[FastAPI, httpx.AsyncClient]] = {}
    contexts = []
    try:
        for name, (create, settings_type) in APPS.items():
            # Every door knocked on with a wrong token: no budget for guesses here (see the last test).
            app = create(servers.settings(settings_type, failed_tokens_per_ip=""))
            context = running(app)
            opened[name] = (app, await context.__aenter__())
            contexts.append(context)
        yield opened
    finally:
        for context in reversed(contexts):
            await context.__aexit__(None, None, None)


async def knock(client: httpx.AsyncClient, method: str, path: str, headers: dict[str, str]) -> httpx.Response:
    url = re.sub(r"\{[^}]+\}", str(uuid.uuid4()), path)
    body: Any = {} if method in ("POST", "PUT", "PATCH") else None
    return await client.request(method, url, json=body, headers=headers)


def title(answer: httpx.Response) -> Any:
    return answer.json().get("title") if "json" in answer.headers.get("content-type", "") else None


async def test_no_route_answers_without_a_token_but_the_public_ones(
    clients: dict[str, tuple[FastAPI, httpx.AsyncClient]],
) -> None:
    tried, open_doors = 0, []
    for service, (app, client) in clients.items():
        for method, path in operations(app):
            if (service, method, path) in PUBLIC:
                continue
            for headers in (ANONYMOUS, WRONG):
                answer = await knock(client, method, path, headers)
                tried += 1
                if answer.status_code != 401:
                    open_doors.append(f"{service} {method} {path}: {answer.status_code}")
    assert not open_doors, open_doors
    assert tried > 80, "every service's operations were tried"


async def test_the_viewer_token_reads_lead_data_and_changes_nothing(
    clients: dict[str, tuple[FastAPI, httpx.AsyncClient]],
) -> None:
    refused, read = [], []
    for service, (app, client) in clients.items():
        for method, path in operations(app):
            operation = (service, method, path)
            if operation in PUBLIC or (service == "ingest" and SOURCE_KEYED.match(path)):
                continue
            answer = await knock(client, method, path, VIEWER)
            if operation in VIEWER_READS:
                read.append(answer.status_code)
            elif (answer.status_code, title(answer)) != (403, VIEWER_ONLY_READS):
                refused.append(f"{service} {method} {path}: {answer.status_code} {answer.text}")
            elif "www-authenticate" in answer.headers:
                refused.append(f"{service} {method} {path}: asks for another token")
    assert not refused, f"the viewer token did more than read, or was not told why not: {refused}"
    assert len(read) == len(VIEWER_READS) and not {401, 403} & set(read), read


async def test_the_viewer_token_on_an_admin_route_is_told_it_only_reads(
    clients: dict[str, tuple[FastAPI, httpx.AsyncClient]],
) -> None:
    """The reproduction: simulating a rule change with the viewer token answered 401 "Admin token
    missing or wrong". A wrong or missing token is still a 401 asking for a bearer token, and
    an admin-looking token that is not the admin's is no 403: only the viewer token is."""
    _, scoring = clients["scoring"]
    viewer = await scoring.post("/v1/rules:simulate", json={}, headers=VIEWER)
    assert viewer.status_code == 403, viewer.text
    assert viewer.json() == {"type": "about:blank", "title": VIEWER_ONLY_READS, "status": 403}
    assert viewer.headers["content-type"] == "application/problem+json"
    near = {"Authorization": VIEWER["Authorization"] + "x"}
    for headers in (ANONYMOUS, WRONG, near):
        answer = await scoring.post("/v1/rules:simulate", json={}, headers=headers)
        assert answer.status_code == 401, (headers, answer.text)
        assert answer.json()["title"] == "Admin token missing or wrong"
        assert answer.headers["www-authenticate"] == "Bearer"


async def test_scores_and_reports_are_not_readable_without_a_token(
    clients: dict[str, tuple[FastAPI, httpx.AsyncClient]],
) -> None:
    """The reproduction: a person's stage and history by lead id, the funnel, from outside."""
    _, scoring = clients["scoring"]
    _, metrics = clients["metrics"]
    doors = ((scoring, f"/v1/leads/{uuid.uuid4()}"), (scoring, "/v1/leads"), (metrics, "/v1/funnel"))
    for client, path in doors:
        answer = await client.get(path, headers=ANONYMOUS)
        assert answer.status_code == 401, answer.text
        assert answer.headers["www-authenticate"] == "Bearer"
        assert answer.headers["content-type"].startswith("application/problem+json")
    assert (await metrics.get("/dashboard", headers=ANONYMOUS)).status_code == 200, "the page asks for it"


async def test_where_others_reach_a_service_docs_are_off_and_metrics_take_a_token(servers: Servers) -> None:
    tokens = {"admin_token": "a-long-random-admin-token", "viewer_token": "a-viewer-token"}
    exposed = servers.settings(ScoringSettings, host="0.0.0.0", **tokens)
    app = scoring_app(exposed)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://scoring") as client:
        for path in ("/docs", "/redoc", "/openapi.json"):
            assert (await client.get(path)).status_code == 404, path
        assert (await client.get("/metrics")).status_code == 401
        scraped = await client.get("/metrics", headers={"Authorization": "Bearer a-viewer-token"})
        assert scraped.status_code == 200 and "leadflow_" in scraped.text
        assert (await client.get("/healthz")).status_code == 200, "probes stay open"


@pytest.mark.parametrize("service", ["scoring", "metrics"])
async def test_wrong_tokens_are_guessed_only_so_often_and_then_not_even_the_right_one_is_let_in(
    servers: Servers, service: str
) -> None:
    """Guessing at speed: every service answered a wrong admin or viewer token with a 401 as
    fast as they came (300 in a row), where ingest already throttled wrong source keys. Past
    the client's budget every token it sends is a 429, the right one too (were only the wrong
    ones refused, a right guess would still get in); other clients and requests with no token
    at all are not held, and the budget is per IPv6 /64 as for forms."""
    create, settings_type = APPS[service]
    app = create(servers.settings(settings_type, failed_tokens_per_ip="3/year"))
    path = {"scoring": "/v1/rules", "metrics": "/v1/funnel"}[service]
    async with running(app) as client:
        guesses = [(await client.get(path, headers=WRONG)).status_code for _ in range(3)]
        assert guesses == [401, 401, 401]
        for headers in (WRONG, VIEWER):
            held = await client.get(path, headers=headers)
            assert held.status_code == 429, held.text
            assert held.headers["content-type"] == "application/problem+json"
            assert held.json()["title"] == "Too many wrong tokens from this address; send the right one later"
            assert int(held.headers["retry-after"]) >= 1
        assert (await client.get(path, headers=ANONYMOUS)).status_code == 401, "no token is no guess"
        for address in ("10.1.2.3", "2001:db8:0:2::1"):
            async with client_at(app, address) as elsewhere:
                assert (await elsewhere.get(path, headers=VIEWER)).status_code == 200
                for _ in range(3):
                    await elsewhere.get(path, headers=WRONG)
        async with client_at(app, "2001:db8:0:2::ffff") as same_block:
            assert (await same_block.get(path, headers=VIEWER)).status_code == 429


async def test_a_reps_acknowledge_route_is_no_door_for_guessing_the_admin_token(servers: Servers) -> None:
    """Nurture's acknowledge route, open to reps with the token from their webhook, also takes
    the admin token, and compared a wrong one with no count: 300 wrong bearer tokens were 300
    fast 401s, the one door where the admin token could still be guessed at speed (found by a
    review). A wrong bearer token counts there as on the admin routes; a rep's webhook token
    (a secret per lead and rep) and the viewer token are no guesses of it."""
    app = nurture_app(servers.settings(NurtureSettings, failed_tokens_per_ip="3/year"))
    path, body = f"/v1/leads/{uuid.uuid4()}/acknowledge", {"rep_id": str(uuid.uuid4())}
    async with running(app) as client:
        guesses = [(await client.post(path, json=body, headers=WRONG)).status_code for _ in range(3)]
        assert guesses == [401, 401, 401]
        held = await client.post(path, json=body, headers=ADMIN)
        assert held.status_code == 429, held.text
        assert held.json()["title"] == "Too many wrong tokens from this address; send the right one later"
        async with client_at(app, "10.1.2.3") as rep:
            forged = {**body, "token": "forged"}
            tried = [(await rep.post(path, json=forged, headers=ANONYMOUS)).status_code for _ in range(4)]
            tried += [(await rep.post(path, json=body, headers=VIEWER)).status_code for _ in range(4)]
            assert tried == [403] * 4 + [401] * 4
            assert (await rep.post(path, json=body, headers=ADMIN)).status_code == 404, "not held"


def client_at(app: FastAPI, address: str) -> httpx.AsyncClient:
    transport = httpx.ASGITransport(app=app, client=(address, 4000))
    return httpx.AsyncClient(transport=transport, base_url="http://test")
