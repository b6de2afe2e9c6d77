"""Routing is pure: territories and segments match, capacity weights the round robin."""

import uuid
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime

from services.nurture.routing import choose, matches


@dataclass
class Rep:
    name: str
    territories: list[str] = field(default_factory=list)
    segments: list[str] = field(default_factory=list)
    capacity: int = 1
    assigned_total: int = 0
    last_assigned_at: datetime | None = None
    id: uuid.UUID = field(default_factory=uuid.uuid4)


def share_out(reps: list[Rep], leads: int, lead: dict[str, str]) -> Counter[str]:
    given: Counter[str] = Counter()
    for _ in range(leads):
        rep = choose(reps, lead)
        assert isinstance(rep, Rep)
        rep.assigned_total += 1
        given[rep.name] += 1
    return given


def test_territory_and_segment_must_match_when_set() -> None:
    almaty = Rep("Almaty", territories=["KZ"], segments=["retail"])
    assert matches(almaty, {"country": "kz", "industry": "Retail"})
    assert not matches(almaty, {"country": "AZ", "industry": "retail"})
    assert not matches(almaty, {"country": "KZ"})  # segment set, lead has none
    assert matches(Rep("Anyone"), {"country": "AZ"})


def test_capacity_weights_the_round_robin() -> None:
    reps = [Rep("Senior", capacity=2), Rep("Junior", capacity=1)]
    assert share_out(reps, 30, {}) == {"Senior": 20, "Junior": 10}


def test_only_matching_reps_share_a_lead() -> None:
    reps = [
        Rep("Baku", territories=["AZ"]),
        Rep("Astana", territories=["KZ"]),
        Rep("Almaty", territories=["KZ"]),
    ]
    assert share_out(reps, 10, {"country": "KZ"}) == {"Astana": 5, "Almaty": 5}


def test_escalation_skips_reps_who_had_the_lead() -> None:
    first, second = Rep("First"), Rep("Second")
    assert choose([first, second], {}, exclude={first.id}) is second
    assert choose([first, second], {}, exclude={first.id, second.id}) is None
