"""Changing nurture's keys without breaking what was sent or stored: with the old sealing key
kept in LEADFLOW_SECRET_KEY_PREVIOUS, every signing secret still opens and nurture seals them
again with the new key as it starts, after which the old key can go; with the old unsubscribe
secret kept in LEADFLOW_UNSUBSCRIBE_SECRET_PREVIOUS, links in emails already sent still work."""

import uuid
from typing import Any

import pytest
from pydantic import ValidationError
from sqlalchemy import text
from standardwebhooks.webhooks import Webhook

from services.nurture.app import create_app
from services.nurture.assignments import assign_leads
from services.nurture.config import NurtureSettings
from services.nurture.unsubscribe_links import unsubscribe_token
from shared.db import Database
from shared.events import utcnow
from shared.sealing import SecretBox
from tests.conftest import ADMIN, Servers, eventually, running
from tests.helpers import lead_classified
from tests.receiver import webhook_receiver

OLD, NEW = "o" * 32, "n" * 32


def nurture_with(servers: Servers, **keys: Any) -> Any:
    settings = servers.settings(NurtureSettings, touches_enabled=False, **keys)
    return create_app(settings)


def test_a_previous_key_opens_what_it_sealed_and_reseal_moves_it_to_the_current_key() -> None:
    sealed_before = SecretBox(OLD).seal("whsec_abc")
    box = SecretBox(NEW, previous=[OLD])
    assert box.open(sealed_before) == "whsec_abc"
    resealed = box.reseal(sealed_before)
    assert resealed is not None and SecretBox(NEW).open(resealed) == "whsec_abc"
    assert box.reseal(resealed) is None  # the current key sealed it already
    assert SecretBox(NEW).open(box.reseal("whsec_plain") or "") == "whsec_plain"  # stored before sealing
    with pytest.raises(ValueError, match="does not open"):
        SecretBox(NEW).open(sealed_before)


async def stored_secret(db: Database, rep_id: str) -> str:
    async with db.transaction() as session:
        query = text("SELECT webhook_secret FROM reps WHERE id = :id")
        secret: str = (await session.execute(query, {"id": rep_id})).scalar_one()
    return secret


async def resealed(db: Database, rep_id: str) -> bool:
    """Whether the rep's stored secret opens with the new key alone."""
    try:
        SecretBox(NEW).open(await stored_secret(db, rep_id))
    except ValueError:
        return False
    return True


async def test_a_changed_sealing_key_keeps_every_rep_signed_and_lets_the_old_key_go(servers: Servers) -> None:
    with webhook_receiver() as receiver:
        before = nurture_with(servers, secret_key=OLD)
        async with running(before) as client:
            db: Database = before.state.runtime.db
            async with db.transaction() as session:
                await session.execute(text("UPDATE reps SET active = false"))
            created = await client.post(
                "/v1/reps", json={"name": "Aigerim", "webhook_url": receiver.url}, headers=ADMIN
            )
            assert created.status_code == 201, created.text
        rep = created.json()
        changed = nurture_with(servers, secret_key=NEW, secret_key_previous=OLD)
        async with running(changed):
            db = changed.state.runtime.db
            await eventually(lambda: resealed(db, rep["id"]), timeout=20)
        after = nurture_with(servers, secret_key=NEW)  # the old key gone
        async with running(after):
            event = lead_classified("hot")
            async with after.state.runtime.db.transaction() as session:
                await assign_leads(session, [event], after.state.settings, utcnow())
            [request] = await eventually(receiver.received, timeout=20)
    verified = Webhook(rep["webhook_secret"]).verify(request.body, request.headers)
    assert verified["data"]["lead_id"] == str(event.lead_id)


async def test_an_unsubscribe_link_sent_before_the_secret_changed_works_while_the_old_one_is_kept(
    servers: Servers,
) -> None:
    lead_id = uuid.uuid4()
    old, new = "u" * 32, "v" * 32

    def link(secret: str) -> str:
        return f"/v1/unsubscribe?lead_id={lead_id}&token={unsubscribe_token(secret.encode(), lead_id)}"

    async with running(
        nurture_with(servers, unsubscribe_secret=new, unsubscribe_secret_previous=old)
    ) as kept:
        assert (await kept.get(link(old))).status_code == 200, "a link in an email sent before"
        assert (await kept.get(link(new))).status_code == 200
    async with running(nurture_with(servers, unsubscribe_secret=new)) as dropped:
        assert (await dropped.get(link(old))).status_code == 403
        assert (await dropped.get(link(new))).status_code == 200


def test_a_previous_key_left_empty_is_none_and_a_short_one_is_refused() -> None:
    """Compose passes an unset `${LEADFLOW_SECRET_KEY_PREVIOUS:-}` as an empty value."""
    empty = NurtureSettings(secret_key_previous="", unsubscribe_secret_previous="")
    assert empty.secret_key_previous is None and empty.unsubscribe_secret_previous is None
    assert len(empty.unsubscribe_keys) == 1
    with pytest.raises(ValidationError) as refused:
        NurtureSettings(secret_key_previous="short", unsubscribe_secret_previous="short")
    assert "LEADFLOW_SECRET_KEY_PREVIOUS must be at least 32 characters" in str(refused.value)
    assert "LEADFLOW_UNSUBSCRIBE_SECRET_PREVIOUS must be at least 32 characters" in str(refused.value)
