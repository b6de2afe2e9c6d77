"""Which rep gets a lead: pure, no I/O.

A rep matches a lead when the lead's country or city is among the rep's territories and its
industry or segment among the rep's segments; a rep with no territories (or segments) takes
any. Among matching active reps the lead goes to the one furthest below their share: each
rep's share is their capacity, so a rep with capacity 2 gets twice the leads of a rep with 1
(weighted round robin). Ties go to whoever was given a lead longest ago.
"""

from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any, Protocol
from uuid import UUID

_EPOCH = datetime.min.replace(tzinfo=UTC)


class RepLike(Protocol):
    id: UUID
    territories: list[str]
    segments: list[str]
    capacity: int
    assigned_total: int
    last_assigned_at: datetime | None


def matches(rep: RepLike, lead: Mapping[str, Any]) -> bool:
    return _covers(rep.territories, (lead.get("country"), lead.get("city"))) and _covers(
        rep.segments, (lead.get("industry"), lead.get("segment"), lead.get("company_size"))
    )


def _covers(allowed: Sequence[str], values: Iterable[Any]) -> bool:
    if not allowed:
        return True
    wanted = {a.strip().lower() for a in allowed}
    return any(isinstance(v, str) and v.strip().lower() in wanted for v in values)


def choose(reps: Sequence[RepLike], lead: Mapping[str, Any], exclude: Iterable[UUID] = ()) -> RepLike | None:
    """The rep who gets the lead next, or None when no active rep matches."""
    skipped = set(exclude)
    candidates = [r for r in reps if r.id not in skipped and matches(r, lead)]
    if not candidates:
        return None
    return min(
        candidates,
        key=lambda r: ((r.assigned_total + 1) / max(r.capacity, 1), r.last_assigned_at or _EPOCH, str(r.id)),
    )
