"""Which rep gets a lead: pure, no I/O.

A rep matches a lead when the lead's country or city is among the rep's territories and its
industry or segment among the rep's segments; a rep with no territories (or segments) takes
any. A territory and a lead's country that name the same country match however each names it
(its ISO code, or its name in English, Russian, Kazakh or Azerbaijani: countries.py); cities,
and whatever names no country, match as written, in any letter case. A lead that names no
country is in its phone's (+7 701… Kazakhstan, +7 916… Russia), whether or not it names a city,
which still counts for a city territory. When no rep matches outright, what the lead does not
state does not rule a rep out (`matching`): a lead with no place at all goes to reps of any
territory, one with no industry to reps of any segment.

Among matching active reps the lead goes to the one furthest below their share: each
rep's share is their capacity, so a rep with capacity 2 gets twice the leads of a rep with 1
(weighted round robin). Ties go to whoever was given a lead longest ago.

A rep's standing is the leads counted for them per unit of capacity. It counts from
`routing_base`, not from nothing: a rep who joins the round robin (is created, reactivated,
made a rep, or has their capacity, territories or segments changed) starts level with the
lowest standing among the active reps who could be given the same leads (`joining_base`).
Counted from nothing, a new hire (or anyone whose share just grew) was below everyone and
was given every lead until their lifetime count caught up, hundreds in a row. Level with the
lowest, they take their turn at once and then alternate with the others; never ahead of
anyone they compete with, never behind.

A rep whose webhook receiver is paused (it kept failing) is passed over while another can take
the lead, and their turn is spent as if taken (`choose_reachable`).
"""

import hashlib
import math
from collections.abc import Iterable, Mapping, Sequence, Set
from datetime import UTC, datetime
from typing import Any, Protocol
from uuid import UUID

from services.nurture.countries import country_of
from services.nurture.phone_zones import phone_country

_EPOCH = datetime.min.replace(tzinfo=UTC)


class RepLike(Protocol):
    id: UUID
    territories: list[str]
    segments: list[str]
    capacity: int
    assigned_total: int
    routing_base: int
    last_assigned_at: datetime | None


SEGMENT_FIELDS = ("industry", "segment", "company_size")


def matches(rep: RepLike, lead: Mapping[str, Any]) -> bool:
    """Whether the rep's territories cover where the lead is (its country or city; when it names
    no country, its phone's) and their segments what it is."""
    return _covers_where(rep, lead) and _covers_what(rep, lead)


def matching(reps: Iterable[RepLike], lead: Mapping[str, Any]) -> list[RepLike]:
    """The reps who match the lead; when none does, those who match what it states. A lead that
    tells no place (a callback widget's phone with no country code) is covered by any territory,
    one that states no industry, segment or size by any segment: such hot leads went to the
    managers alone, "no rep covers this region", while three reps covered the country. Reps who
    match outright come first, so a stated place or segment still picks its own reps."""
    reps = list(reps)
    exact = [r for r in reps if matches(r, lead)]
    if exact:
        return exact
    placeless = _where(lead) == (None, None)
    unsegmented = not any(_stated(lead.get(k)) for k in SEGMENT_FIELDS)
    return [
        r for r in reps if (placeless or _covers_where(r, lead)) and (unsegmented or _covers_what(r, lead))
    ]


def _covers_where(rep: RepLike, lead: Mapping[str, Any]) -> bool:
    country, city = _where(lead)
    return _covers_place(rep.territories, country, city)


def _covers_what(rep: RepLike, lead: Mapping[str, Any]) -> bool:
    return _covers(rep.segments, [lead.get(k) for k in SEGMENT_FIELDS])


def _where(lead: Mapping[str, Any]) -> tuple[Any, Any]:
    """The lead's country as stated, else its phone's (or None), and its city as stated. A lead
    that gave a city alone (Город=Алматы, +7 701…) was compared by its city only, and no rep of
    Kazakhstan was given it."""
    country, city = lead.get("country"), lead.get("city")
    if not _stated(country):
        country = phone_country(lead.get("phone"))
    return country, city if _stated(city) else None


def _stated(value: Any) -> bool:
    return isinstance(value, str) and bool(value.strip())


def _covers_place(territories: Sequence[str], country: Any, city: Any) -> bool:
    """A territory "KZ" covers a lead from "Kazakhstan" or "Қазақстан"; "Almaty" one from almaty."""
    if _covers(territories, (country, city)):
        return True
    lead_country = country_of(country)
    return lead_country is not None and any(country_of(t) == lead_country for t in territories)


def _covers(allowed: Sequence[str], values: Iterable[Any]) -> bool:
    if not allowed:
        return True
    wanted = {a.strip().lower() for a in allowed}
    return any(isinstance(v, str) and v.strip().lower() in wanted for v in values)


def choose(reps: Sequence[RepLike], lead: Mapping[str, Any], exclude: Iterable[UUID] = ()) -> RepLike | None:
    """The rep who gets the lead next, or None when no active rep matches."""
    skipped = set(exclude)  # before matching: once the reps who match outright had it, the rest may
    candidates = matching([r for r in reps if r.id not in skipped], lead)
    if not candidates:
        return None
    return min(
        candidates,
        key=lambda r: (standing(r, one_more=True), r.last_assigned_at or _EPOCH, str(r.id)),
    )


def choose_reachable(
    reps: Sequence[RepLike],
    lead: Mapping[str, Any],
    unreachable: Set[UUID],
    exclude: Iterable[UUID] = (),
    off_duty: Mapping[UUID, datetime] | None = None,
) -> tuple[RepLike | None, list[RepLike]]:
    """The rep who gets the lead next among those whose webhook can reach them now and who are
    on duty, and the reps whose turn came before theirs but whose receiver is paused
    (`unreachable`: it kept failing) or who are off duty (`off_duty`: when each is back). A hot
    lead given to a rep whose webhook waits for a receiver that is down, or who went home at
    18:00, waited for the SLA to run out before anyone had it. A passed rep's turn is spent
    (counted as if they were given the lead), so that they come back level with the others, not
    owed a run of leads. When every matching rep is passed, the one back on duty soonest takes
    it (a paused receiver's rep on duty first; then whose turn it is), and nobody's turn passes
    (the webhook waits for them, and the SLA runs in their hours)."""
    away = off_duty or {}
    passed: list[RepLike] = []
    skipped = set(exclude)
    while (rep := choose(reps, lead, skipped)) is not None and (rep.id in unreachable or rep.id in away):
        passed.append(rep)
        skipped.add(rep.id)
    if rep is None:
        soonest = min(
            range(len(passed)), key=lambda turn: (away.get(passed[turn].id, _EPOCH), turn), default=None
        )
        return (None if soonest is None else passed[soonest]), []
    return rep, passed


def follow_up_rep(reps: Sequence[RepLike], lead: Mapping[str, Any], lead_id: UUID) -> RepLike | None:
    """Who calls a lead no rep holds (its follow-up's call tasks): one matching rep per lead,
    the same for each of its tasks, spread over the reps by capacity. Weighted rendezvous
    hashing: no state to keep, and a rep joining or leaving moves only the leads that rep
    gains or had. (Choosing by the round robin's standing without counting the choice gave
    every call task to the same rep.)"""
    candidates = matching(reps, lead)
    if not candidates:
        return None
    return max(candidates, key=lambda r: (_draw_weight(lead_id, r), str(r.id)))


def _draw_weight(lead_id: UUID, rep: RepLike) -> float:
    digest = hashlib.sha256(f"{lead_id}:{rep.id}".encode()).digest()
    draw = (int.from_bytes(digest[:8], "big") + 1) / (2**64 + 2)  # in (0, 1)
    return -max(rep.capacity, 1) / math.log(draw)


def standing(rep: RepLike, one_more: bool = False) -> float:
    """The leads counted for the rep (and the next one, with `one_more`) per unit of capacity."""
    return (rep.assigned_total - rep.routing_base + int(one_more)) / max(rep.capacity, 1)


def competes(rep: RepLike, other: RepLike) -> bool:
    """Whether the two could be given the same lead: their territories and segments overlap
    (an empty list covers everything)."""
    places = _overlap(rep.territories, other.territories) or bool(
        _countries(rep.territories) & _countries(other.territories)
    )
    return places and _overlap(rep.segments, other.segments)


def _overlap(one: Sequence[str], other: Sequence[str]) -> bool:
    return not one or not other or bool({a.strip().lower() for a in one} & {b.strip().lower() for b in other})


def _countries(territories: Sequence[str]) -> set[str]:
    return {code for t in territories if (code := country_of(t)) is not None}


def joining_base(rep: RepLike, reps: Iterable[RepLike]) -> int:
    """The `routing_base` that puts `rep`, joining the round robin, level with the lowest
    standing among the other active `reps` it competes with (none: a standing of 0). Rounded
    down: at most part of one lead's head start, so it is never behind them."""
    level = min((standing(r) for r in reps if r.id != rep.id and competes(rep, r)), default=0.0)
    return rep.assigned_total - math.floor(level * max(rep.capacity, 1))
