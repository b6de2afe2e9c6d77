"""People erased while an import was running. The import's file was sent before they asked, and
a row naming them, stored after their erasure, made them a lead again (found by an outside
review: 15 of 100 people erased during an import came back, those whose row was still to come).
While an import runs, an erasure keeps a keyed hash of the person's email and phone (the key is
this database's, made once) and its moment, no lead, name or anything else of theirs; the rows
of an import started before that moment are refused, and the hashes are forgotten once no import
that started before them runs. A file sent after the erasure is the operator's new word: taken."""

import hashlib
import hmac
from datetime import datetime
from typing import Any

from sqlalchemy import text
from sqlmodel.ext.asyncio.session import AsyncSession

from shared.db import Database

ERASED = "the person asked to be erased while this file was being imported: not taken"
_KEY = text("SELECT key FROM erasure_key")
_RUNNING = text("SELECT min(started_at) FROM imports WHERE status = 'running'")
_REMEMBER = text(
    "INSERT INTO erased_contacts (digest, erased_at) SELECT unnest(CAST(:digests AS bytea[])), :at"
    " ON CONFLICT (digest) DO UPDATE SET erased_at = excluded.erased_at"
)
_FOUND = text(
    "SELECT digest FROM erased_contacts WHERE digest = ANY(CAST(:digests AS bytea[])) AND erased_at >= :since"
)
# Needed no longer: older than every running import (all of them, when none runs).
_FORGET = text(
    "DELETE FROM erased_contacts WHERE erased_at"
    " < coalesce((SELECT min(started_at) FROM imports WHERE status = 'running'), 'infinity')"
)


def contacts(email: str | None, phone: str | None) -> list[str]:
    """The person's email and phone as ingest stores them (lower case; E.164)."""
    return [f"email:{email}"] * bool(email) + [f"phone:{phone}"] * bool(phone)


async def _digests(session: AsyncSession, written: list[str]) -> list[bytes]:
    key = bytes((await session.execute(_KEY)).scalar_one())
    return [hmac.digest(key, contact.encode(), hashlib.sha256) for contact in written]


async def remember(session: AsyncSession, email: str | None, phone: str | None, erased_at: datetime) -> None:
    """The erased person's contacts, kept while an import that started before `erased_at` runs."""
    written = contacts(email, phone)
    if written and (await session.execute(_RUNNING)).scalar_one() is not None:
        await session.execute(_REMEMBER, {"digests": await _digests(session, written), "at": erased_at})
    await session.execute(_FORGET)


async def erased_since(session: AsyncSession, since: datetime, people: list[tuple[Any, Any]]) -> set[int]:
    """Which of `people` ((email, phone) each) were erased at or after `since` (by their index)."""
    written = [contacts(email, phone) for email, phone in people]
    if not any(written):
        return set()
    digests = await _digests(session, [contact for each in written for contact in each])
    found = set((await session.execute(_FOUND, {"digests": digests, "since": since})).scalars())
    erased, at = set(), 0
    for index, each in enumerate(written):
        if any(digest in found for digest in digests[at : at + len(each)]):
            erased.add(index)
        at += len(each)
    return erased


async def forget_unneeded(db: Database) -> None:
    """After an import ended: the contacts no running import needs any more."""
    async with db.transaction() as session:
        await session.execute(_FORGET)
