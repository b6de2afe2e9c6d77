"""Lifecycle moves (003:49-71, 004:424-432): sales outcomes move stages, marketing stages
advance by themselves, illegal moves are refused, lost leads revive."""

from datetime import datetime
from typing import get_args

import pytest

from services.scoring import lifecycle
from services.scoring.classify import Decision, decide
from services.scoring.profile import Profile, fold, outcome_of
from shared.events import Envelope
from shared.events.scoring import Stage
from tests.scoring.factories import NOW, RULES, activity, ago, lead, outcome, updated


def after_outcome(
    stage: str, profile: Profile, kind: str, since: datetime | None = None, **details: object
) -> Decision:
    event = outcome(kind, **details)
    fold(profile, event)
    return decide(stage, since or ago(10), profile, RULES, NOW, outcome_of(event))


@pytest.mark.parametrize(
    ("stage", "kind", "details", "expected"),
    [
        ("mql", "sales_accepted", {}, "sql"),
        ("lead", "sales_accepted", {}, "sql"),
        ("sql", "meeting_booked", {}, "opportunity"),
        ("sql", "proposal_sent", {}, "opportunity"),
        ("lead", "won", {"amount": 500}, "customer"),  # word of mouth skips stages (000:121)
        ("opportunity", "won", {"amount": 500}, "customer"),
        ("customer", "won", {"amount": 500}, "regular_customer"),  # a repeat purchase
        ("opportunity", "lost", {"reason": "bought a competitor's product"}, "lost"),
        ("sql", "sales_rejected", {"reason": "not now"}, "parked"),
        ("sql", "sales_rejected", {"reason": "spam"}, "disqualified"),
        ("customer", "churned", {}, "churned"),
        ("churned", "won", {"amount": 100}, "customer"),  # won back
        ("disqualified", "won", {"amount": 777}, "customer"),  # sales won one the rules ruled out
    ],
)
def test_sales_outcomes_move_stages(stage: str, kind: str, details: dict[str, object], expected: str) -> None:
    decision = after_outcome(stage, lead(), kind, **details)
    assert decision.stage == expected
    assert all(move.refused is None for move in decision.moves)


@pytest.mark.parametrize(
    ("stage", "kind"),
    [
        ("lead", "churned"),  # only a customer can churn
        ("customer", "sales_accepted"),  # no going back to SQL
        ("customer", "lost"),
        ("opportunity", "sales_accepted"),
        ("disqualified", "meeting_booked"),  # sales accepts it first
    ],
)
def test_illegal_moves_are_refused_and_said(stage: str, kind: str) -> None:
    decision = after_outcome(stage, lead(), kind, amount=1)
    assert decision.stage == stage
    refused = [m for m in decision.moves if m.refused]
    assert refused and f"{stage} cannot move to" in (refused[0].refused or "")


def test_marketing_stages_do_not_step_back_by_themselves() -> None:
    cooled = lead(200, timeframe="immediately", need="CRM", is_decision_maker=True)  # cold now
    decision = decide("sql", ago(150), cooled, RULES, NOW)
    assert decision.evaluation.temperature == "cold" and decision.stage == "sql"


def test_a_lost_lead_revives_on_new_interest() -> None:
    """Lost leads are "the most surprising source of new leads" (003:39-41)."""
    quiet = lead(60)
    assert decide("lost", ago(30), quiet, RULES, NOW).stage == "lost"
    back = lead(60, "web_form", activity("form_submitted", 1))
    decision = decide("lost", ago(30), back, RULES, NOW)
    assert decision.stage == "lead" and "revived" in (decision.stage_reason or "")


@pytest.mark.parametrize(
    "reps_doing",
    [
        activity("note", 1, text="Closed as lost; competitor signed with them"),
        activity("call_logged", 1, result="no_answer"),
        activity("call_logged", 1, result="unreachable"),
    ],
)
def test_a_reps_note_or_unanswered_call_does_not_revive_a_lost_or_parked_lead(reps_doing: Envelope) -> None:
    """Revival is for the person's new interest: the rep's closing note revived the lead, handed
    it to the rep again with a new SLA, and took it out of "lost" in the funnel."""
    for stage in ("lost", "parked"):
        decision = decide(
            stage, ago(30), lead(60, "web_form", reps_doing, timeframe="immediately"), RULES, NOW
        )
        assert decision.stage == stage, decision.stage_reason
    answered = lead(60, "web_form", activity("call_logged", 1, result="answered"))
    assert decide("lost", ago(30), answered, RULES, NOW).stage == "lead"  # the person talked


def test_a_customer_who_refers_becomes_an_advocate() -> None:
    referring = lead(90, "web_form", activity("referral_given", 1))
    assert decide("customer", ago(30), referring, RULES, NOW).stage == "advocate"


def test_an_advocate_who_buys_again_stays_an_advocate() -> None:
    """DOMAIN.md 47: customer -> regular customer -> advocate; a repeat purchase by an
    advocate is no step back to regular customer."""
    referred = lead(200, "web_form", activity("referral_given", 60))
    decision = after_outcome("advocate", referred, "won", since=ago(50), amount=300)
    assert decision.stage == "advocate"
    assert all(move.to != "regular_customer" for move in decision.moves)


def test_a_new_lead_starts_where_its_evaluation_puts_it() -> None:
    decision = decide(None, None, lead(timeframe="immediately", need="CRM", budget=9000), RULES, NOW)
    assert decision.stage == "sql" and decision.moves[0].to == "sql"


def test_the_stages_are_those_the_events_name() -> None:
    """Metrics checks costs entered per stage against `shared.events.scoring.Stage`: a stage
    scoring moves a lead to is one of them, and each of them is one scoring moves to."""
    assert set(lifecycle.STAGES) == set(get_args(Stage))


INQUIRY = "Just curious how your CRM handles leads"


def test_sales_accepting_a_disqualified_lead_takes_it_back_for_good() -> None:
    """Only sales can take a disqualified lead back, by accepting it: the acceptance moved it to
    SQL and the red flag at once back to disqualified, nothing published; and an accepted lead
    was disqualified by a later chat "just wondering…" (found by a review)."""
    curious = lead(20, message=INQUIRY)
    assert decide(None, None, curious, RULES, NOW).stage == "disqualified"
    accepted = after_outcome("disqualified", curious, "sales_accepted")
    assert (accepted.stage, accepted.stage_reason) == ("sql", "sales outcome: sales_accepted")
    chat = activity("chat_message", 0, text="Just wondering, do you deliver on weekends?")
    fold(curious, chat)
    assert decide("sql", NOW, curious, RULES, NOW).stage == "sql"
    rejected = after_outcome("sql", curious, "sales_rejected", reason="only asking")
    assert rejected.stage == "disqualified"  # sales may still rule it out


@pytest.mark.parametrize("timeframe", ["unknown", "не знаю", "never", "нет"])
def test_a_timeframe_that_states_none_does_not_revive_a_lost_lead(timeframe: str) -> None:
    """A CRM setting the field on a lost deal put it back in the funnel and in sequences."""
    profile = lead(60)
    decision = after_outcome("opportunity", profile, "lost", reason="price")
    assert decision.stage == "lost"
    fold(profile, updated(1, timeframe=timeframe))
    assert decide("lost", ago(5), profile, RULES, NOW).stage == "lost"
    fold(profile, updated(0, timeframe="next month"))
    assert decide("lost", ago(5), profile, RULES, NOW).stage != "lost"  # a horizon stated: revived


@pytest.mark.parametrize(
    ("history", "late", "stage"),
    [
        ((("meeting_booked", 20), ("lost", 5)), ("proposal_sent", 15), "lost"),
        ((("won", 200), ("churned", 10)), ("won", 200), "churned"),
    ],
)
def test_an_outcome_dated_before_the_latest_one_moves_nothing(
    history: tuple[tuple[str, int], ...], late: tuple[str, int], stage: str
) -> None:
    """A CRM's backfill re-sent an old proposal or win: it reopened a lost deal, made a churned
    customer a customer again (found by a review)."""
    profile, current = lead(300), "sql"
    for kind, days in history:
        event = outcome(kind, days, amount=100)
        fold(profile, event)
        current = decide(current, ago(days), profile, RULES, NOW, outcome_of(event)).stage
    assert current == stage
    event = outcome(late[0], late[1], amount=100)
    fold(profile, event)
    decision = decide(current, ago(1), profile, RULES, NOW, outcome_of(event))
    assert decision.stage == stage
    assert [m.refused for m in decision.moves if m.refused] == [f"dated before the latest outcome ({stage})"]
