"""Nurture's main write path (the `lead.classified` handler) as a property against the real
database: for any run of classifications of a lead, with any context (time zones, call
windows, channels and languages that may be nonsense), it never fails; a lead that was ever
hot or SQL has exactly one rep; and the touches waiting are exactly the current playbook's."""

import uuid
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import text

from services.nurture.app import create_app
from services.nurture.assignments import wants_a_rep
from services.nurture.config import NurtureSettings
from services.nurture.handlers import event_handlers
from shared.db import Database
from shared.events import LEAD_CLASSIFIED, Envelope, LeadClassified
from tests.conftest import ADMIN, Servers, running

STAGES = ["suspect", "lead", "mql", "sql", "opportunity", "customer", "regular_customer", "advocate"]
STAGES += ["disqualified", "parked", "lost", "churned", "no-such-stage"]
words = st.text(st.characters(exclude_categories=("Cs",), exclude_characters="\x00"), max_size=20)
context = st.fixed_dictionaries(
    {},
    optional={
        "email": st.sampled_from(["aru@qazaq.kz", "not an email"]),
        "phone": st.sampled_from(["+77012345678", "12"]),
        "first_name": words,
        "country": st.sampled_from(["KZ", "AZ", "US", ""]),
        "timezone": st.one_of(st.sampled_from(["Asia/Almaty", "Asia/Baku", "UTC"]), words),
        "call_window": st.one_of(st.sampled_from(["10:00-14:00", "22:00-02:00"]), words),
        "preferred_channel": st.one_of(st.sampled_from(["email", "sms", "messenger", "call"]), words),
        "language": st.sampled_from(["kk", "ru", "az", "en", "xx"]),
        "channel": st.sampled_from(["web_form", "callback_request", "import"]),
    },
)
classification = st.tuples(st.sampled_from(["hot", "warm", "cold"]), st.sampled_from(STAGES), context)


@pytest.fixture(scope="module")
async def nurture(servers: Servers) -> AsyncIterator[httpx.AsyncClient]:
    """The app (for its database and playbooks), with one rep for any lead (no territories)."""
    async with running(create_app(servers.settings(NurtureSettings, touches_enabled=False))) as client:
        rep = {"name": "Aigerim", "webhook_url": "http://127.0.0.1:9/hook"}
        assert (await client.post("/v1/reps", json=rep, headers=ADMIN)).status_code == 201
        yield client


def classified(lead_id: uuid.UUID, temperature: str, stage: str, lead: dict[str, Any]) -> Envelope:
    payload = LeadClassified(score=50, temperature=temperature, stage=stage, rules_version=1, lead=lead)  # type: ignore[arg-type]
    return Envelope.of(LEAD_CLASSIFIED, lead_id, uuid.uuid4(), "scoring", payload)


async def state_of(db: Database, lead_id: uuid.UUID) -> tuple[int, Any, list[Any]]:
    async with db.transaction() as session:
        params = {"id": lead_id}
        reps = await session.execute(text("SELECT count(*) FROM assignments WHERE lead_id = :id"), params)
        lead = (
            await session.execute(text("SELECT * FROM followed_leads WHERE lead_id = :id"), params)
        ).first()
        waiting = await session.execute(
            text("SELECT * FROM touches WHERE lead_id = :id AND status = 'scheduled'"), params
        )
        return int(reps.scalar_one()), lead, list(waiting)


@settings(max_examples=40, deadline=None, derandomize=True, suppress_health_check=list(HealthCheck))
@given(run=st.lists(classification, min_size=1, max_size=4))
async def test_any_run_of_classifications_keeps_one_rep_and_the_current_playbook(
    nurture: httpx.AsyncClient, run: list[tuple[str, str, dict[str, Any]]]
) -> None:
    app = nurture._transport.app  # type: ignore[attr-defined]
    db, book = app.state.runtime.db, app.state.playbooks
    handle = event_handlers(app.state.settings, book)[LEAD_CLASSIFIED]
    lead_id = uuid.uuid4()
    events = [classified(lead_id, *one) for one in run]
    for event in events:
        async with db.transaction() as session:
            await handle(session, [event])

    reps, lead, waiting = await state_of(db, lead_id)
    ever_handed_over = any(wants_a_rep(LeadClassified.model_validate(e.data)) for e in events)
    assert reps == (1 if ever_handed_over else 0)
    temperature, stage, last = run[-1]
    async with db.transaction() as session:
        playbook = (await book.active(session)).value.select(temperature, stage, last.get("channel"))
    assert lead.playbook == (playbook.name if playbook else None)
    assert {t.playbook for t in waiting} <= {lead.playbook}
    if playbook is not None:
        assert {t.channel for t in waiting} <= {step.channel for step in playbook.steps}
        assert all(t.due_at >= lead.enrolled_at for t in waiting)
