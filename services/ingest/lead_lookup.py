"""A transaction's leads by contact point: read and locked once, then found in memory."""

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any
from uuid import UUID

from sqlalchemy import text
from sqlmodel.ext.asyncio.session import AsyncSession

from services.ingest.journal import know_key

Contacts = Sequence[tuple[str | None, str | None]]


@dataclass
class TransactionLeads:
    """The leads one transaction has seen or made, by contact point ("email:…", "phone:…").

    Rows created here are written at commit, and rows merged here are updated in memory as
    well as in the database, so a later capture in the same transaction finds either here.
    `looked_up` holds the contact points already read (and locked) from the database: for
    those, not being in `by_contact` means no lead has them.
    """

    by_contact: dict[str, dict[str, Any]] = field(default_factory=dict)
    by_id: dict[UUID, dict[str, Any]] = field(default_factory=dict)
    looked_up: set[str] = field(default_factory=set)
    created: set[UUID] = field(default_factory=set)

    def add(self, row: dict[str, Any]) -> dict[str, Any]:
        """Register a row; a lead already known keeps its (more recent) in-memory row."""
        known = self.by_id.setdefault(UUID(str(row["id"])), row)
        self.index(known)
        return known

    def index(self, row: dict[str, Any]) -> None:
        for key in _contact_keys(row["email"], row["phone"]):
            self.by_contact[key] = row


def _contact_keys(email: str | None, phone: str | None) -> list[str]:
    return [f"{name}:{value}" for name, value in (("email", email), ("phone", phone)) if value]


def transaction_leads(session: AsyncSession) -> TransactionLeads:
    leads: TransactionLeads = session.info.setdefault("ingest.leads", TransactionLeads())
    return leads


_LOCK_BY_CONTACT = text(
    "SELECT id, source_id, email, phone, attributes, seal_key FROM leads "
    "WHERE email = ANY(:emails) OR phone = ANY(:phones) ORDER BY id FOR UPDATE"
)


async def prefetch(session: AsyncSession, contacts: Contacts) -> None:
    """Read and lock, in one query, the leads a whole group of captures will match, so each
    capture finds its lead without a query of its own (the group committer calls this)."""
    leads = transaction_leads(session)
    emails = sorted({e for e, _ in contacts if e and f"email:{e}" not in leads.looked_up})
    phones = sorted({p for _, p in contacts if p and f"phone:{p}" not in leads.looked_up})
    if not emails and not phones:
        return
    result = await session.execute(_LOCK_BY_CONTACT, {"emails": emails, "phones": phones})
    for row in result:
        leads.add(dict(row._mapping))
        know_key(session, row.id, row.seal_key)
    leads.looked_up.update(f"email:{e}" for e in emails)
    leads.looked_up.update(f"phone:{p}" for p in phones)


async def find_matches(session: AsyncSession, email: str | None, phone: str | None) -> list[dict[str, Any]]:
    """The leads holding this email or phone, locked so concurrent merges into one lead queue."""
    leads = transaction_leads(session)
    keys = _contact_keys(email, phone)
    if any(k not in leads.looked_up and k not in leads.by_contact for k in keys):
        await prefetch(session, [(email, phone)])
    found = {id(row): row for key in keys if (row := leads.by_contact.get(key)) is not None}
    return list(found.values())
