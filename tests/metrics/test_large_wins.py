"""The largest wins ingest takes are folded: a lead's revenue holds all its wins added up
(migration 0013), where `numeric(14, 2)` stopped below one of them and metrics dead-lettered it."""

import uuid
from datetime import timedelta

import httpx

from tests.conftest import Servers, eventually
from tests.helpers import lead_captured
from tests.metrics.test_cooperation import FIRST_PURCHASE, metrics, publish, purchase, row_of

__all__ = ["metrics"]  # the module's metrics service, shared with test_cooperation

LARGEST_WIN = 1e12  # services.ingest.history_schemas.OutcomeIn.amount's bound


async def test_a_customer_of_the_largest_wins_counts_them_all(
    metrics: httpx.AsyncClient, servers: Servers
) -> None:
    channel = f"large_wins_{uuid.uuid4().hex[:8]}"
    captured = lead_captured(channel=channel, captured_at=FIRST_PURCHASE - timedelta(days=3))
    wins = [purchase(captured, day, LARGEST_WIN) for day in (0, 30, 60)]
    await publish(servers, [captured, *wins])

    async def all_three() -> dict | None:  # type: ignore[type-arg]
        row = await row_of(metrics, "/v1/ltv", channel)
        return row if row and row["months"] == 3.0 else None

    row = await eventually(all_three, timeout=30)
    assert row["customers"] == 1 and row["average_check"] == LARGEST_WIN, row
    assert row["ltv_revenue"] == 3 * LARGEST_WIN, row
