"""The scoring handler on a batch: the same lead twice in one run is merged in order."""

import uuid
from datetime import UTC, datetime

from sqlalchemy import text

from services.scoring.handlers import classify_leads
from services.scoring.rules import Windows
from shared.db import Database, create_engine
from shared.events import LEAD_CAPTURED, Envelope
from tests.conftest import Servers


def captured(lead_id: uuid.UUID, **fields: object) -> Envelope:
    data = {
        "source_id": str(uuid.uuid4()),
        "channel": "web_form",
        "captured_at": datetime.now(UTC).isoformat(),
        **fields,
    }
    return Envelope(
        type=LEAD_CAPTURED, lead_id=lead_id, correlation_id=uuid.uuid4(), producer="ingest", data=data
    )


async def test_later_event_of_a_lead_in_the_same_run_wins_and_each_change_is_published(
    servers: Servers,
) -> None:
    db = Database(create_engine(servers.database_url, "scoring"))
    lead = uuid.uuid4()
    try:
        async with db.transaction() as session:
            await classify_leads(
                session,
                [
                    captured(lead, timeframe="none", company="Qazaq Trade"),
                    captured(lead, timeframe="immediately"),
                ],
                Windows(),
            )
        async with db.transaction() as session:
            stored = (
                await session.execute(
                    text("SELECT temperature, profile FROM lead_scores WHERE lead_id = :id"), {"id": lead}
                )
            ).one()
            published = (
                (
                    await session.execute(
                        text("SELECT value FROM outbox WHERE key = :key ORDER BY id"),
                        {"key": str(lead).encode()},
                    )
                )
                .scalars()
                .all()
            )
    finally:
        await db.dispose()
    assert stored.temperature == "hot"
    assert stored.profile["company"] == "Qazaq Trade"  # the earlier event's fields are kept
    events = [Envelope.from_bytes(value) for value in published]
    assert [(e.data["temperature"], e.data.get("previous_temperature")) for e in events] == [
        ("cold", None),
        ("hot", "cold"),
    ]
