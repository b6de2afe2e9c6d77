"""Migration 0017 on a read model written before it: each lead's churns come from the event
archive, dated by their outcomes; a reclassification of a churned lead and a churn scoring
refused are no churns; a lead churned before the archive existed keeps its dates."""

import asyncio
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest
from alembic import command
from alembic.config import Config
from sqlalchemy import text

from services.metrics.handlers import record
from shared import topics
from shared.cli import migrations_dir
from shared.db import Database
from shared.events import LEAD_CLASSIFIED, OUTCOME_RECORDED, Envelope, LeadClassified, OutcomeRecorded
from shared.inbox import archive_new_events
from tests.conftest import Servers

SCHEMA = "metrics_before_0017"
T0 = datetime(2031, 5, 4, 9, tzinfo=UTC)
DAY = timedelta(days=1)
POSTED = T0 + 1000 * DAY  # when sales posted the history
TWICE, UNPAIRED, REFUSED, BEFORE_THE_ARCHIVE, NEVER, FOLDED = (uuid.UUID(int=n) for n in range(0xA3, 0xA9))


def migrate(url: str, revision: str) -> None:
    config = Config()
    config.set_main_option("script_location", str(migrations_dir("metrics")))
    config.set_main_option("sqlalchemy.url", url)
    config.attributes["schema"] = SCHEMA
    command.upgrade(config, revision)


@pytest.fixture
async def db(servers: Servers) -> AsyncIterator[Database]:
    database = Database(servers.database_url, SCHEMA)
    async with database.engine.begin() as connection:
        await connection.execute(text(f"DROP SCHEMA IF EXISTS {SCHEMA} CASCADE"))
    await asyncio.to_thread(migrate, servers.database_url, "0016")
    yield database
    await database.dispose()


def churn(lead: uuid.UUID, left: datetime) -> Envelope:
    outcome = OutcomeRecorded(outcome_id=uuid.uuid4(), outcome="churned", occurred_at=left)
    made = Envelope.of(OUTCOME_RECORDED, lead, uuid.uuid4(), "ingest", outcome)
    return made.model_copy(update={"occurred_at": POSTED})


def move(cause: Envelope, previous: str, at: datetime = POSTED, by: str = "") -> Envelope:
    """Scoring's classification to churned after `cause`; `by` a pass ("decay"), which follows none."""
    payload = LeadClassified(
        score=0, temperature="cold", stage="churned", previous_stage=previous, rules_version=1
    )
    if by:
        made = Envelope.of(LEAD_CLASSIFIED, cause.lead_id, uuid.uuid4(), "scoring", payload)
    else:
        made = cause.follow_up(LEAD_CLASSIFIED, "scoring", payload)
    return made.model_copy(update={"occurred_at": at})


def archived(event: Envelope) -> tuple[uuid.UUID, uuid.UUID, str, bytes]:
    topic = topics.LEAD_CLASSIFICATIONS if event.type == LEAD_CLASSIFIED else topics.LEAD_EVENTS
    return event.id, event.lead_id, topic, event.to_bytes()


async def test_churns_are_dated_by_their_archived_outcomes(db: Database, servers: Servers) -> None:
    first, second = churn(TWICE, T0 + 30 * DAY), churn(TWICE, T0 + 150 * DAY)
    unpaired = churn(UNPAIRED, T0 + 40 * DAY)  # its outcome is not in the archive
    history = [
        first,
        move(first, "customer"),
        second,
        move(second, "customer", POSTED + DAY + timedelta(microseconds=120500)),
    ]
    history.append(move(second, "churned", POSTED + 200 * DAY, by="decay"))
    history += [move(unpaired, "customer"), churn(REFUSED, T0 + 50 * DAY)]
    async with db.transaction() as session:
        await session.execute(
            text(
                "INSERT INTO lead_facts (lead_id, channel, captured_at, churned_at, last_churned_at,"
                " purchases, revenue) VALUES (:lead, 'ad', :captured_at, :first, :last, 1, 100)"
            ),
            [  # as the moments scoring classified them made them (0012)
                {"lead": TWICE, "captured_at": T0, "first": POSTED, "last": POSTED + 200 * DAY},
                {"lead": UNPAIRED, "captured_at": T0, "first": POSTED, "last": POSTED},
                {"lead": REFUSED, "captured_at": T0, "first": None, "last": None},
                {"lead": BEFORE_THE_ARCHIVE, "captured_at": T0, "first": T0 + 9 * DAY, "last": T0 + 99 * DAY},
                {"lead": NEVER, "captured_at": T0, "first": None, "last": None},
            ],
        )
        await archive_new_events(session, [archived(e) for e in history])

    await asyncio.to_thread(migrate, servers.database_url, "head")

    async with db.transaction() as session:
        rows = await session.execute(text("SELECT lead_id, churned_at, last_churned_at FROM lead_facts"))
        found = {row.lead_id: (row.churned_at, row.last_churned_at) for row in rows}
    assert found == {
        TWICE: (T0 + 30 * DAY, T0 + 150 * DAY),
        UNPAIRED: (POSTED, POSTED),  # dated by its move until the outcome comes
        REFUSED: (None, None),
        BEFORE_THE_ARCHIVE: (T0 + 9 * DAY, T0 + 99 * DAY),
        NEVER: (None, None),
    }

    # Written as the handlers write them: events applied after it merge with what it filled,
    # and a rebuild would give the same row.
    async with db.transaction() as session:
        await record(session, [unpaired])
        await record(
            session, [e.model_copy(update={"lead_id": FOLDED}) for e in history if e.lead_id == TWICE]
        )
    async with db.transaction() as session:
        query = "SELECT lead_id, churned_at, churn_moves, churn_outcomes FROM lead_facts"
        after = {row.lead_id: row for row in await session.execute(text(query))}
    assert after[UNPAIRED].churned_at == T0 + 40 * DAY
    assert (after[TWICE].churn_moves, after[TWICE].churn_outcomes) == (
        after[FOLDED].churn_moves,
        after[FOLDED].churn_outcomes,
    )
