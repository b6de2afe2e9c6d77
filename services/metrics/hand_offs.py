"""Every hand-off of a lead to a rep (migration 0026), so speed to lead by rep measures each rep
on the hand-offs they got: nurture's `lead.assigned` (a first hand-off, an escalation, a manual
assignment, a rep leaving) is a row; `sla.breached` names the rep and when they were given it,
their breach. What else ends a hand-off names only the rep and a moment: `lead.acknowledged`
(their latest hand-off given at or before it), and the lead taken from them through no fault of
theirs, before they acknowledged it (a `lead.assigned` saying they left or a manager gave it to
another rep, `escalated_from` them; an `sla.breached` with `reason: rep_left`). Those are kept in
`hand_off_ends`, and each hand-off of the reps a run touched is given its acknowledgement and
release from there again, so the events give the same rows in any order, twice, or replayed by a
rebuild (the earliest moment wins). The cells by rep are kept from the rows by triggers."""

from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import Any
from uuid import UUID

from sqlalchemy import text
from sqlmodel.ext.asyncio.session import AsyncSession

from services.metrics.fact_columns import time_of
from shared.events import LEAD_ACKNOWLEDGED, LEAD_ASSIGNED, SLA_BREACHED, Envelope

# Taken from the rep before they acknowledged it, not their fault (nurture's reasons).
RELEASING = {"rep_left", "assigned"}
ACKNOWLEDGED, RELEASED = "acknowledged_at", "released_at"
_ASSIGNED = text(
    "INSERT INTO hand_offs (lead_id, rep_id, assigned_at)"
    " SELECT * FROM unnest(CAST(:leads AS uuid[]), CAST(:reps AS uuid[]), CAST(:ats AS timestamptz[]))"
    " ORDER BY 1, 2, 3 ON CONFLICT DO NOTHING"
)
_BREACHED = text(
    "INSERT INTO hand_offs AS h (lead_id, rep_id, assigned_at, breached_at)"
    " SELECT * FROM unnest(CAST(:leads AS uuid[]), CAST(:reps AS uuid[]), CAST(:given AS timestamptz[]),"
    " CAST(:ats AS timestamptz[])) ORDER BY 1, 2, 3"
    " ON CONFLICT (lead_id, rep_id, assigned_at)"
    " DO UPDATE SET breached_at = least(h.breached_at, excluded.breached_at)"
)
_ENDED = text(
    "INSERT INTO hand_off_ends (lead_id, rep_id, ended, given_by, at)"
    " SELECT * FROM unnest(CAST(:leads AS uuid[]), CAST(:reps AS uuid[]), CAST(:ended AS text[]),"
    " CAST(:given AS timestamptz[]), CAST(:ats AS timestamptz[])) ORDER BY 1, 2, 3, 4, 5"
    " ON CONFLICT DO NOTHING"
)
# Each hand-off of these (lead, rep) pairs: the earliest of the ends that name it.
_MATCHED = text(
    "WITH pairs AS ("
    " SELECT DISTINCT * FROM unnest(CAST(:leads AS uuid[]), CAST(:reps AS uuid[])) AS p (lead_id, rep_id)"
    "), ends AS ("
    " SELECT e.lead_id, e.rep_id, o.assigned_at,"
    " min(e.at) FILTER (WHERE e.ended = 'acknowledged_at') AS acknowledged_at,"
    " min(e.at) FILTER (WHERE e.ended = 'released_at') AS released_at"
    " FROM pairs JOIN hand_off_ends AS e USING (lead_id, rep_id)"
    " CROSS JOIN LATERAL (SELECT x.assigned_at FROM hand_offs AS x"
    " WHERE x.lead_id = e.lead_id AND x.rep_id = e.rep_id ORDER BY x.assigned_at <= e.given_by DESC,"
    " CASE WHEN x.assigned_at <= e.given_by THEN x.assigned_at END DESC, x.assigned_at LIMIT 1) AS o"
    " GROUP BY 1, 2, 3"
    "), wanted AS ("
    " SELECT h.lead_id, h.rep_id, h.assigned_at, ends.acknowledged_at, ends.released_at"
    " FROM pairs JOIN hand_offs AS h USING (lead_id, rep_id)"
    " LEFT JOIN ends USING (lead_id, rep_id, assigned_at)"
    ") UPDATE hand_offs AS h SET acknowledged_at = w.acknowledged_at, released_at = w.released_at"
    " FROM wanted AS w"
    " WHERE (h.lead_id, h.rep_id, h.assigned_at) = (w.lead_id, w.rep_id, w.assigned_at)"
    " AND (h.acknowledged_at, h.released_at) IS DISTINCT FROM (w.acknowledged_at, w.released_at)"
)
_FORGET = (
    text("DELETE FROM hand_offs WHERE lead_id = ANY(CAST(:leads AS uuid[]))"),
    text("DELETE FROM hand_off_ends WHERE lead_id = ANY(CAST(:leads AS uuid[]))"),
)
BEFORE = timedelta(microseconds=1)  # a lead taken from a rep ends the hand-off they had before

Named = tuple[UUID, UUID, datetime]  # lead, rep, moment
End = tuple[UUID, UUID, str, datetime, datetime]  # lead, rep, what, the hand-off's moment, when


async def record(session: AsyncSession, events: list[Envelope]) -> None:
    """The run's hand-offs and breaches, what else ended hand-offs, then the acknowledgements and
    releases of every hand-off of the (lead, rep) pairs it named."""
    assigned: list[Named] = []
    breached: dict[Named, datetime] = {}  # the hand-off named → the earliest breach (a row each)
    ends: list[End] = []
    for event in events:
        data = event.data
        if event.type == LEAD_ASSIGNED and (at := time_of(data.get("assigned_at"))) and data.get("rep_id"):
            assigned.append((event.lead_id, UUID(str(data["rep_id"])), at))
            if data.get("escalated_from") and data.get("reason") in RELEASING:
                ends.append((event.lead_id, UUID(str(data["escalated_from"])), RELEASED, at - BEFORE, at))
        elif event.type == LEAD_ACKNOWLEDGED and (at := time_of(data.get("acknowledged_at"))):
            ends.append((event.lead_id, UUID(str(data["rep_id"])), ACKNOWLEDGED, at, at))
        elif (
            event.type == SLA_BREACHED and data.get("rep_id") and (given := time_of(data.get("assigned_at")))
        ):
            at = time_of(data.get("breached_at")) or event.occurred_at
            named = (event.lead_id, UUID(str(data["rep_id"])), given)
            if data.get("reason") in RELEASING:
                assigned.append(named)
                ends.append((*named[:2], RELEASED, given, at))
            else:
                breached[named] = min(breached.get(named, at), at)
    if assigned:
        await session.execute(_ASSIGNED, _arrays(assigned, "leads", "reps", "ats"))
    if breached:
        rows = [(*named, at) for named, at in breached.items()]
        await session.execute(_BREACHED, _arrays(rows, "leads", "reps", "given", "ats"))
    if ends:
        await session.execute(_ENDED, _arrays(ends, "leads", "reps", "ended", "given", "ats"))
    pairs = {(lead, rep) for lead, rep, *_ in (*assigned, *breached, *ends)}
    if pairs:
        await session.execute(_MATCHED, _arrays(sorted(pairs), "leads", "reps"))


def _arrays(rows: Iterable[tuple[Any, ...]], *names: str) -> dict[str, list[Any]]:
    """Rows as one array per column, for unnest."""
    columns = list(zip(*rows, strict=True))
    return {name: list(column) for name, column in zip(names, columns, strict=True)}


async def forget(session: AsyncSession, leads: list[Any]) -> None:
    for statement in _FORGET:
        await session.execute(statement, {"leads": leads})
