"""A query parameter an API route does not take is a 422 naming it (and the ones the route
takes), in every service: `?channel=ads` on speed-to-lead, or `?grup_by=channel` on the funnel,
once answered 200 with unfiltered figures, as if the filter applied (found by an outside
review). So is one a route takes one value of, sent more than once: `?stages=lead&stages=mql`
answered the funnel of `mql` alone. Pages people open, form posts, chatbot webhooks and health
checks take any, as often as sent."""

import uuid
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from typing import Annotated

import httpx
import pytest
from fastapi import Depends, FastAPI, Query
from fastapi.routing import APIRoute
from pydantic import BaseModel, ConfigDict, Field

from services.ingest.app import create_app as ingest_app
from services.ingest.config import IngestSettings
from services.metrics.app import create_app as metrics_app
from services.metrics.config import MetricsSettings
from services.nurture.app import create_app as nurture_app
from services.nurture.config import NurtureSettings
from services.nurture.unsubscribe_links import unsubscribe_token
from services.scoring.app import create_app as scoring_app
from services.scoring.config import ScoringSettings
from shared.problem_handlers import install_problem_handlers
from shared.query_parameters import RefuseUnknownQueryParameters, query_names
from tests.conftest import ADMIN, Servers, running
from tests.helpers import create_source, refused_fields

TRACKING = {"utm_source": "newsletter", "utm_campaign": "spring", "fbclid": "IwAR0x", "mc_eid": "5f1e"}


@pytest.fixture(scope="module")
async def apps(servers: Servers) -> AsyncIterator[dict[str, httpx.AsyncClient]]:
    """The four services, built as they are served."""
    builds = {
        "ingest": lambda: ingest_app(servers.settings(IngestSettings)),
        "scoring": lambda: scoring_app(servers.settings(ScoringSettings)),
        "nurture": lambda: nurture_app(servers.settings(NurtureSettings)),
        "metrics": lambda: metrics_app(servers.settings(MetricsSettings)),
    }
    async with AsyncExitStack() as stack:
        yield {name: await stack.enter_async_context(running(build())) for name, build in builds.items()}


def reasons(response: httpx.Response) -> dict[str, str]:
    assert response.status_code == 422, response.text
    assert response.headers["content-type"] == "application/problem+json"
    return {error["field"]: error["reason"] for error in response.json()["errors"]}


async def test_a_filter_speed_to_lead_does_not_have_is_refused_not_ignored(
    apps: dict[str, httpx.AsyncClient],
) -> None:
    response = await apps["metrics"].get("/v1/speed-to-lead", params={"channel": "ads", "tz": "Asia/Almaty"})
    assert reasons(response) == {
        "channel": "is not a query parameter of this route (it takes from, group_by, to, tz)"
    }
    assert response.json()["errors"][0]["type"] == "extra_forbidden"


async def test_a_misspelt_parameter_is_refused_and_the_right_ones_still_work(
    apps: dict[str, httpx.AsyncClient],
) -> None:
    metrics = apps["metrics"]
    refused = await metrics.get("/v1/funnel", params={"grup_by": "channel", "chanel": "ads"})
    assert refused_fields(refused) == ["chanel", "grup_by"]
    answered = await metrics.get("/v1/funnel", params={"group_by": "channel", "from": "2026-12-01"})
    assert answered.status_code == 200, answered.text


@pytest.mark.parametrize(
    ("service", "path", "params"),
    [
        ("ingest", "/v1/sources", {}),
        ("scoring", "/v1/leads", {"temperature": "hot"}),
        ("nurture", "/v1/reps", {"limit": "5"}),
        ("metrics", "/v1/cac", {"from": "2026-12-01", "to": "2026-12-31"}),
        ("metrics", "/v1/outbox", {}),
    ],
)
async def test_every_services_api_refuses_what_its_routes_do_not_take(
    apps: dict[str, httpx.AsyncClient], service: str, path: str, params: dict[str, str]
) -> None:
    """Tracking parameters too: an API route is called by a program, which means what it sends
    (`utm_campaign` on the funnel is no `campaign` filter)."""
    client = apps[service]
    answered = await client.get(path, params=params, headers=ADMIN)
    assert answered.status_code == 200, answered.text
    refused = await client.get(path, params={**params, "utm_campaign": "spring"}, headers=ADMIN)
    assert refused_fields(refused) == ["utm_campaign"]


async def test_a_lead_posted_with_an_unknown_parameter_is_refused_before_it_is_captured(
    apps: dict[str, httpx.AsyncClient],
) -> None:
    ingest = apps["ingest"]
    source = await create_source(ingest)
    email = f"q-{uuid.uuid4().hex[:8]}@example.kz"
    response = await ingest.post(
        "/v1/leads?dry_run=true", json={"email": email}, headers={"X-Source-Key": source["key"]}
    )
    assert reasons(response) == {"dry_run": "is not a query parameter of this route (it takes none)"}


async def test_pages_people_open_take_the_parameters_mail_clients_and_ads_add(
    apps: dict[str, httpx.AsyncClient], servers: Servers
) -> None:
    metrics, nurture = apps["metrics"], apps["nurture"]
    for path in ("/dashboard", "/static/dashboard.js", "/docs", "/openapi.json", "/healthz"):
        response = await metrics.get(path, params=TRACKING)
        assert response.status_code == 200, (path, response.text)
    lead_id = uuid.uuid4()
    token = unsubscribe_token(servers.settings(NurtureSettings).unsubscribe_key, lead_id)
    link = {"lead_id": str(lead_id), "token": token, **TRACKING}
    page = await nurture.get("/v1/unsubscribe", params=link, headers={"accept": "text/html"})
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html"), page.text


async def test_a_landing_pages_form_and_a_chatbot_may_post_with_parameters_of_their_own(
    apps: dict[str, httpx.AsyncClient],
) -> None:
    ingest = apps["ingest"]
    source = await create_source(
        ingest, channel="landing_page", redirect_url="https://promo.example.kz/thanks"
    )
    email = f"q-{uuid.uuid4().hex[:8]}@example.kz"
    form = await ingest.post(f"/v1/forms/{source['id']}", params=TRACKING, data={"email": email})
    assert form.status_code == 303, form.text
    telegram = await ingest.post(f"/v1/chatbots/{source['id']}/telegram", params=TRACKING, json={})
    assert telegram.status_code == 401, telegram.text  # its secret is checked, not its query


class Filters(BaseModel):
    channel: str | None = None
    since: str | None = Field(None, alias="from")


class AnyFilters(BaseModel):
    model_config = ConfigDict(extra="allow")


def test_a_query_models_fields_are_what_its_route_takes() -> None:
    app = FastAPI()

    @app.get("/strict")
    async def strict(filters: Annotated[Filters, Query()], limit: int = 10) -> None: ...

    @app.get("/loose")
    async def loose(filters: Annotated[AnyFilters | None, Query()] = None) -> None: ...

    routes = {route.path: route for route in app.routes if isinstance(route, APIRoute)}
    assert query_names(routes["/strict"].dependant) == {"channel", "from", "limit"}
    assert query_names(routes["/loose"].dependant) is None


async def test_stages_sent_one_by_one_are_refused_not_cut_to_the_last(
    apps: dict[str, httpx.AsyncClient],
) -> None:
    metrics = apps["metrics"]
    repeated = await metrics.get("/v1/funnel", params=[("stages", "lead"), ("stages", "mql")])
    assert reasons(repeated) == {
        "stages": "given 2 times; it takes one value;"
        " write several as one comma-separated value: stages=lead,mql"
    }
    assert repeated.json()["errors"][0]["type"] == "repeated"
    together = await metrics.get("/v1/funnel", params={"stages": "lead,mql"})
    assert [s["stage"] for s in together.json()["stages"]] == ["lead", "mql"], together.text


async def test_a_period_bound_sent_twice_is_refused_not_one_of_them_taken(
    apps: dict[str, httpx.AsyncClient],
) -> None:
    """`from` comes from the period's dependency, `tz` too: every parameter the route takes counts."""
    twice = [("from", "2026-01-01"), ("from", "2026-02-01"), ("tz", "UTC"), ("tz", "Asia/Almaty")]
    response = await apps["metrics"].get("/v1/funnel", params=twice)
    assert reasons(response) == {
        "from": "given 2 times; it takes one value",
        "tz": "given 2 times; it takes one value",
    }
    misspelt_too = await apps["metrics"].get("/v1/cac", params=[*twice[:2], ("chanel", "ads")])
    assert refused_fields(misspelt_too) == ["chanel", "from"]


async def test_pages_people_open_take_a_parameter_sent_twice(apps: dict[str, httpx.AsyncClient]) -> None:
    twice = [("utm_source", "newsletter"), ("utm_source", "ads")]
    for path in ("/dashboard", "/healthz"):
        response = await apps["metrics"].get(path, params=twice)
        assert response.status_code == 200, (path, response.text)


class Tagged(BaseModel):
    tag: list[str] = []
    channel: str | None = None


async def test_a_parameter_the_route_reads_as_a_list_may_repeat() -> None:
    app = FastAPI(dependencies=[Depends(RefuseUnknownQueryParameters())])
    install_problem_handlers(app)

    @app.get("/leads")
    async def leads(tag: Annotated[list[str], Query()], limit: int = 10) -> dict[str, object]:
        return {"tag": tag, "limit": limit}

    @app.get("/modelled")
    async def modelled(filters: Annotated[Tagged, Query()]) -> list[str]:
        return filters.tag

    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        listed = await client.get("/leads", params=[("tag", "a"), ("tag", "b"), ("limit", "5")])
        assert listed.json() == {"tag": ["a", "b"], "limit": 5}, listed.text
        limits = await client.get("/leads", params=[("tag", "a"), ("limit", "5"), ("limit", "9")])
        assert reasons(limits) == {"limit": "given 2 times; it takes one value"}
        modelled_tags = await client.get("/modelled", params=[("tag", "a"), ("tag", "b")])
        assert modelled_tags.json() == ["a", "b"], modelled_tags.text
        channels = await client.get("/modelled", params=[("channel", "a"), ("channel", "b")])
        assert reasons(channels) == {"channel": "given 2 times; it takes one value"}
