"""A known person's repeat submission: what it says this time (timeframe, message, need) comes
on its activity, the profile left as it was, and counts as the same words on a new lead would."""

from services.scoring.classify import classification, decide
from services.scoring.model import evaluate
from services.scoring.profile import Profile
from shared.events import ACTIVITY_RECORDED, Said
from tests.scoring.factories import NOW, RULES, activity, ago, lead, updated

BROWSING = {"timeframe": "later", "message": "just browsing"}
BUYING = {"timeframe": "now", "message": "please call me back today, want to buy"}


def intent_lines(evaluation: object) -> dict[str, str]:
    breakdown = evaluation.breakdown  # type: ignore[attr-defined]
    return {hit.rule: hit.reason for hit in breakdown if hit.rule.startswith("intent.")}


def test_a_repeat_submission_saying_call_me_today_makes_a_cold_lead_hot() -> None:
    before = evaluate(lead(3, **BROWSING), RULES, NOW)
    assert before.temperature == "cold"
    again = evaluate(lead(3, "web_form", activity("form_submitted", 0, **BUYING), **BROWSING), RULES, NOW)
    assert again.temperature == "hot"
    assert again.direct_request == "one_click_order"  # "want to buy": straight to sales
    lines = intent_lines(again)
    assert lines["intent.timeframe.hot"] == "wants it now («now»)"
    assert lines["intent.request.callback_request"] == "asked: callback request «call me back» (0 days ago)"
    new_person = evaluate(lead(0, **BUYING), RULES, NOW)
    assert (again.intent, again.direct_request) == (new_person.intent, new_person.direct_request)


def test_a_repeats_intent_cools_as_a_new_leads_does() -> None:
    """Within the rules' windows: said 20 days ago (hot cools after 14), it is warm now."""
    said_then = activity("form_submitted", 20, **BUYING)
    evaluation = evaluate(lead(30, "web_form", said_then, **BROWSING), RULES, NOW)
    assert evaluation.temperature == "warm"
    assert "said 20 days ago" in intent_lines(evaluation)["intent.timeframe.warm"]


def test_a_timeframe_stated_later_on_the_profile_wins_over_an_earlier_repeat() -> None:
    repeat = activity("form_submitted", 5, timeframe="now")
    evaluation = evaluate(
        lead(10, "web_form", repeat, updated(1, timeframe="within_3_months"), **BROWSING), RULES, NOW
    )
    assert evaluation.temperature == "warm"
    assert intent_lines(evaluation)["intent.timeframe.warm"] == (
        "buying within 89 days («within_3_months»), said 1 day ago"
    )
    # and an older repeat arriving late does not undo a newer one
    late = evaluate(
        lead(
            10,
            "web_form",
            activity("form_submitted", 1, timeframe="now"),
            activity("form_submitted", 4, timeframe="later"),
        ),
        RULES,
        NOW,
    )
    assert late.temperature == "hot"


def test_a_repeats_timeframe_nobody_understood_is_shown_with_its_words() -> None:
    repeat = activity("form_submitted", 0, timeframe="когда звёзды сойдутся")
    evaluation = evaluate(lead(2, "web_form", repeat, **BROWSING), RULES, NOW)
    assert intent_lines(evaluation)["intent.timeframe.not_understood"] == (
        "timeframe not understood: «когда звёзды сойдутся»"
    )


def test_a_red_flag_in_a_repeats_message_counts_as_on_a_new_lead() -> None:
    repeat = activity("form_submitted", 0, timeframe="now", message="spam")
    assert evaluate(lead(0, message="spam"), RULES, NOW).disqualified_by is not None
    assert evaluate(lead(2, "web_form", repeat), RULES, NOW).disqualified_by is not None


def said_in_classification(profile: Profile) -> Said | None:
    """The `said` block of the `lead.classified` scoring would publish for the lead now."""
    decision = decide(None, None, profile, RULES, NOW)
    return classification(decision, profile, (None, None, None), ACTIVITY_RECORDED, 1).said


def test_the_classification_says_what_a_repeat_said_while_its_lead_keeps_the_profile() -> None:
    """The rep calling sees the person's latest words, not only the profile a capture key may
    not overwrite ("later, just browsing")."""
    profile = lead(3, "web_form", activity("form_submitted", 0, **BUYING), **BROWSING)
    decision = decide(None, None, profile, RULES, NOW)
    classified = classification(decision, profile, (None, None, None), ACTIVITY_RECORDED, 1)
    assert classified.said == Said(**BUYING, at=NOW)
    assert {k: classified.lead[k] for k in BROWSING} == BROWSING
    # a repeat saying only a need is the latest statement, as it was said
    needs = lead(
        3, "web_form", activity("form_submitted", 1, **BUYING), activity("imported", 0, need="a CRM")
    )
    assert said_in_classification(needs) == Said(need="a CRM", at=NOW)


def test_the_profiles_own_words_are_said_when_they_are_newer_than_a_repeat() -> None:
    repeat = activity("form_submitted", 5, **BUYING)
    profile = lead(10, "web_form", repeat, updated(1, message="we chose another vendor"), **BROWSING)
    assert said_in_classification(profile) == Said(
        timeframe="later", message="we chose another vendor", at=ago(1)
    )
    assert said_in_classification(lead(2, **BROWSING)) == Said(**BROWSING, at=ago(2))
    assert said_in_classification(lead(2)) is None  # nothing said: no block


def test_an_older_repeat_arriving_late_does_not_replace_the_latest_words() -> None:
    late = lead(
        10, "web_form", activity("form_submitted", 1, **BUYING), activity("form_submitted", 4, **BROWSING)
    )
    assert said_in_classification(late) == Said(**BUYING, at=ago(1))
