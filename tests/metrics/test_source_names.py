"""The funnel by source names each source beside its id: ingest's `lead.captured` carries the
source's name, and metrics keeps the latest given (a capture of an older name arriving late
does not bring it back). Through the real pipeline: a source made and a lead posted on ingest,
read on metrics."""

import uuid
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from typing import Any

import httpx
import pytest

from services.ingest.app import create_app as ingest_app
from services.ingest.config import IngestSettings
from services.metrics.app import create_app as metrics_app
from services.metrics.config import MetricsSettings
from shared import topics
from shared.kafka import Publisher
from tests.conftest import Servers, eventually, running
from tests.helpers import create_source, lead_captured, post_lead


@pytest.fixture
async def apps(servers: Servers) -> AsyncIterator[dict[str, httpx.AsyncClient]]:
    async with AsyncExitStack() as stack:
        yield {
            "ingest": await stack.enter_async_context(running(ingest_app(servers.settings(IngestSettings)))),
            "metrics": await stack.enter_async_context(
                running(metrics_app(servers.settings(MetricsSettings)))
            ),
        }


async def by_source(metrics: httpx.AsyncClient, source: str, leads: int) -> dict[str, Any]:
    """The source's funnel group once `leads` of its leads are counted."""

    async def counted() -> dict[str, Any] | None:
        body = (await metrics.get("/v1/funnel", params={"group_by": "source"})).json()
        group = next((g for g in body["groups"] if g["group"] == source), None)
        return group if group and group["total"] == leads else None

    found: dict[str, Any] = await eventually(counted, timeout=30)
    return found


async def test_the_funnel_by_source_names_each_source(
    servers: Servers, apps: dict[str, httpx.AsyncClient]
) -> None:
    name = f"Spring webinar landing {uuid.uuid4().hex[:6]}"
    source = await create_source(apps["ingest"], name=name, channel="landing_page")
    posted = await post_lead(apps["ingest"], source["key"], email=f"{uuid.uuid4().hex[:8]}@example.kz")
    assert posted.status_code in (200, 201, 202), posted.text
    group = await by_source(apps["metrics"], source["id"], 1)
    assert (group["group"], group["name"]) == (source["id"], name)

    # A capture of the source's old name, from before, arriving late: the latest name stays.
    older = lead_captured(
        source_id=source["id"], source_name="Old landing", captured_at="2020-01-01T00:00:00+00:00"
    )
    publisher = Publisher(servers.bootstrap, "test")
    try:
        await publisher.publish([(topics.LEAD_EVENTS, str(older.lead_id).encode(), older.to_bytes())])
    finally:
        await publisher.stop()
    group = await by_source(apps["metrics"], source["id"], 2)
    assert group["name"] == name
