"""Routing is pure: territories and segments match, capacity weights the round robin, and a rep
who joins it starts level with the reps they compete with."""

import uuid
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from itertools import count, groupby

from services.nurture.routing import (
    choose,
    choose_reachable,
    follow_up_rep,
    joining_base,
    matches,
    phone_country,
)

START = datetime(2031, 1, 1, tzinfo=UTC)
TICKS = count()


@dataclass
class Rep:
    name: str
    territories: list[str] = field(default_factory=list)
    segments: list[str] = field(default_factory=list)
    capacity: int = 1
    assigned_total: int = 0
    routing_base: int = 0
    last_assigned_at: datetime | None = None
    id: uuid.UUID = field(default_factory=uuid.uuid4)


def share_out(reps: list[Rep], leads: int, lead: dict[str, str]) -> Counter[str]:
    return Counter(given_in_turn(reps, leads, lead))


def given_in_turn(reps: list[Rep], leads: int, lead: dict[str, str]) -> list[str]:
    """Who gets each of the next leads, counted as a hand-off counts them."""
    given = []
    for _ in range(leads):
        rep = choose(reps, lead)
        assert isinstance(rep, Rep)
        rep.assigned_total += 1
        rep.last_assigned_at = START + timedelta(seconds=next(TICKS))
        given.append(rep.name)
    return given


def longest_run(given: list[str]) -> int:
    return max(len(list(run)) for _, run in groupby(given))


def joins(rep: Rep, reps: list[Rep]) -> Rep:
    """`rep` joining the round robin, as the rep directory has them (created, back, changed)."""
    rep.routing_base = joining_base(rep, reps)
    return rep


def test_territory_and_segment_must_match_when_set() -> None:
    almaty = Rep("Almaty", territories=["KZ"], segments=["retail"])
    assert matches(almaty, {"country": "kz", "industry": "Retail"})
    assert not matches(almaty, {"country": "AZ", "industry": "retail"})
    assert not matches(almaty, {"country": "KZ"})  # segment set, lead has none
    assert matches(Rep("Anyone"), {"country": "AZ"})


def test_a_lead_that_names_no_place_is_where_its_phone_says() -> None:
    """A callback widget's lead, a phone and a name: every rep had territories, none matched,
    and the hottest leads went to the managers alone (found by a review)."""
    almaty, baku = Rep("Almaty", territories=["Казахстан"]), Rep("Baku", territories=["AZ"])
    assert phone_country("+77015553322") == "KZ" and phone_country("+79161234567") == "RU"
    assert phone_country("+994501234567") == "AZ" and phone_country("87015553322") is None
    assert matches(almaty, {"phone": "+77015553322"}) and not matches(baku, {"phone": "+77015553322"})
    assert share_out([almaty, baku], 4, {"phone": "+994501234567"}) == {"Baku": 4}
    assert not matches(almaty, {"phone": "+77015553322", "country": "AZ"}), "a stated place wins"


def test_a_lead_that_names_a_city_but_no_country_is_in_its_phones_country() -> None:
    """The review's case: Город=Алматы, +7 701…, and the only rep covering Kazakhstan. The lead
    was compared by its city alone, and nobody was told of a hot lead."""
    kazakhstan, russia = Rep("Kazakhstan", ["Kazakhstan"]), Rep("Russia", ["Россия"])
    almaty = {"city": "Алматы", "phone": "+77015553322"}
    assert matches(kazakhstan, almaty) and not matches(russia, almaty)
    assert choose([russia, kazakhstan], almaty) is kazakhstan
    moscow = {"city": "Москва", "phone": "+79161234567"}  # +7 is Russia's as well as Kazakhstan's
    assert matches(russia, moscow) and not matches(kazakhstan, moscow)
    assert matches(Rep("Almaty", ["алматы"]), {**almaty, "phone": "+79161234567"}), "a city still counts"
    assert not matches(kazakhstan, {**almaty, "country": "Россия"}), "a stated country wins"
    assert not matches(kazakhstan, {"city": "Алматы", "phone": "87015553322"}), "no country code"


def test_what_a_lead_does_not_state_rules_no_rep_out_when_none_matches_outright() -> None:
    kz_retail, kz_any = Rep("KZ retail", ["KZ"], ["retail"]), Rep("KZ any", ["KZ"])
    baku = Rep("Baku", ["AZ"])
    assert share_out([kz_retail, baku], 4, {"country": "KZ"}) == {"KZ retail": 4}, "no industry stated"
    fresh = [Rep("KZ retail", ["KZ"], ["retail"]), Rep("Baku", ["AZ"])]
    assert share_out(fresh, 4, {}) == {"KZ retail": 2, "Baku": 2}, "no place, no phone"
    assert choose([kz_retail, kz_any], {"country": "KZ"}) is kz_any, "an outright match first"
    assert choose([kz_retail, kz_any], {"country": "KZ"}, exclude={kz_any.id}) is kz_retail
    assert choose([kz_retail, baku], {"country": "KZ", "industry": "banks"}) is None
    assert choose([baku], {"country": "KZ"}) is None, "a stated place still rules out"


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


def test_a_new_rep_gets_a_fair_share_not_a_run() -> None:
    reps = [Rep("Rep1", assigned_total=4), Rep("Rep2", assigned_total=3), Rep("Rep3", assigned_total=4)]
    reps.append(joins(Rep("Rep4"), reps))  # level with Rep2, the lowest
    assert sorted(given_in_turn(reps, 4, {})) == ["Rep1", "Rep2", "Rep3", "Rep4"]
    assert share_out(reps, 40, {}) == {"Rep1": 10, "Rep2": 10, "Rep3": 10, "Rep4": 10}


def test_a_rep_back_from_leave_or_given_more_capacity_gets_no_run() -> None:
    veteran, other = Rep("Veteran", assigned_total=300), Rep("Other", assigned_total=290)
    back = joins(Rep("Back", assigned_total=20), [veteran, other])  # away while the others worked
    reps = [veteran, other, back]
    turns = given_in_turn(reps, 20, {})  # till both are level with Veteran, in turn
    assert Counter(turns) == {"Other": 10, "Back": 10} and longest_run(turns) == 1
    assert share_out(reps, 30, {}) == {"Veteran": 10, "Other": 10, "Back": 10}
    veteran.capacity = 3  # raised: level again, then three turns in five
    joins(veteran, reps)
    turns = given_in_turn(reps, 50, {})
    assert Counter(turns) == {"Veteran": 30, "Other": 10, "Back": 10} and longest_run(turns) <= 3


def test_a_new_rep_starts_level_with_the_reps_of_their_own_territory() -> None:
    busy = Rep("Astana", territories=["KZ"], assigned_total=1000)
    quiet = Rep("Baku", territories=["AZ"], assigned_total=10)
    reps = [busy, quiet]
    reps.append(joins(Rep("Ganja", territories=["AZ"]), reps))
    reps.append(joins(Rep("Almaty", territories=["KZ"]), reps))
    assert share_out(reps, 10, {"country": "AZ"}) == {"Baku": 5, "Ganja": 5}
    assert share_out(reps, 10, {"country": "KZ"}) == {"Astana": 5, "Almaty": 5}


def test_call_tasks_of_leads_no_rep_holds_are_spread_by_capacity_and_stay_with_one_rep() -> None:
    """Every call task of eight leads went to one rep: the round robin's choice was never counted."""
    aigerim, dana = Rep("Aigerim", id=uuid.UUID(int=1)), Rep("Dana", capacity=2, id=uuid.UUID(int=2))
    erlan = Rep("Erlan", territories=["AZ"], id=uuid.UUID(int=3))  # fixed ids: the same draws each run
    reps, lead = [aigerim, dana, erlan], {"country": "KZ"}
    leads = [uuid.UUID(int=n) for n in range(3000)]
    callers = {lead_id: follow_up_rep(reps, lead, lead_id) for lead_id in leads}
    shares = Counter(rep.name for rep in callers.values() if rep is not None)
    assert set(shares) == {"Aigerim", "Dana"}, "Erlan's territory does not cover the lead"
    assert 1.8 < shares["Dana"] / shares["Aigerim"] < 2.2, shares  # twice the capacity, twice the calls
    assert all(follow_up_rep(reps, lead, i) is callers[i] for i in leads[:100]), "the same rep each time"
    gone = [i for i in leads if callers[i] is dana]
    stayed = [i for i in leads if callers[i] is aigerim]
    assert all(follow_up_rep([aigerim, erlan], lead, i) is aigerim for i in gone + stayed), "only Dana's move"
    assert follow_up_rep([erlan], lead, leads[0]) is None


def given_passing_over(
    reps: list[Rep], leads: int, lead: dict[str, str], unreachable: set[uuid.UUID]
) -> list[str]:
    """As `given_in_turn`, with the reps in `unreachable` passed over as a hand-off passes them."""
    given = []
    for _ in range(leads):
        rep, passed = choose_reachable(reps, lead, unreachable)
        assert isinstance(rep, Rep)
        for other in passed:
            assert isinstance(other, Rep)
            other.routing_base -= 1
        rep.assigned_total += 1
        rep.last_assigned_at = START + timedelta(seconds=next(TICKS))
        given.append(rep.name)
    return given


def test_a_rep_who_cannot_be_reached_is_passed_over_and_comes_back_level() -> None:
    """While Bota's receiver is down, the leads go to the others, and her turns are spent: back,
    she takes her turn among them, not the 20 leads she missed in a row."""
    reps = [Rep("aruzhan"), Rep("bota"), Rep("dana")]
    bota = reps[1]
    while_down = given_passing_over(reps, 30, {}, {bota.id})
    assert "bota" not in while_down
    assert Counter(while_down) == {"aruzhan": 15, "dana": 15}
    back = given_in_turn(reps, 30, {})
    assert Counter(back) == {"aruzhan": 10, "bota": 10, "dana": 10}
    assert longest_run(back) == 1


def test_when_nobody_can_be_reached_the_rep_whose_turn_it_is_takes_the_lead() -> None:
    reps = [Rep("aruzhan"), Rep("bota", assigned_total=1)]
    rep, passed = choose_reachable(reps, {}, {r.id for r in reps})  # Aruzhan's turn
    assert rep is reps[0] and passed == []


def test_only_the_reps_ahead_of_the_taker_pass_their_turn() -> None:
    """Dana, behind Aruzhan, keeps her standing: only a rep whose turn came first passes it."""
    reps = [Rep("aruzhan", last_assigned_at=START), Rep("bota"), Rep("dana", assigned_total=3)]
    rep, passed = choose_reachable(reps, {}, {reps[1].id, reps[2].id})
    assert rep is reps[0] and passed == [reps[1]]


def test_a_rep_who_cannot_be_reached_and_does_not_match_is_not_passed() -> None:
    reps = [Rep("aruzhan", territories=["KZ"]), Rep("bota", territories=["AZ"])]
    rep, passed = choose_reachable(reps, {"country": "KZ"}, {reps[1].id})
    assert rep is reps[0] and passed == []
