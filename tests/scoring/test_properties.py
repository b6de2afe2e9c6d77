"""Properties of the model for any profile: the score stays in 0..100, the same input gives
the same answer, the breakdown sums to the score, and a positive signal never lowers it."""

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from services.scoring.model import evaluate
from services.scoring.profile import Profile, fold
from tests.scoring.factories import NOW, RULES, activity, captured

ACTIVITIES = sorted(RULES.engagement.activities)
text = st.text(max_size=40)
attributes = st.fixed_dictionaries(
    {},
    optional={
        "timeframe": st.one_of(
            st.sampled_from(["now", "2 weeks", "about two months", "none", "6 months"]), text
        ),
        "need": text,
        "message": text,
        "job_title": st.one_of(st.sampled_from(["CEO", "Manager", "Директор", "intern"]), text),
        "is_decision_maker": st.booleans(),
        "company_size": st.one_of(st.integers(-10, 10_000), text),
        "budget": st.one_of(st.floats(allow_nan=False, allow_infinity=False), st.integers()),
        "industry": st.sampled_from(["retail", "it", "mining"]),
        "country": st.sampled_from(["KZ", "AZ", "US"]),
        "email": st.sampled_from(["a@qazaq.kz", "b@mailinator.com"]),
    },
)
activities = st.lists(st.tuples(st.sampled_from(ACTIVITIES), st.floats(0, 400)), max_size=15)
channels = st.sampled_from(["web_form", "newsletter", "callback_request", "one_click_order", "import"])


def build(fields: dict[str, Any], done: list[tuple[str, float]], channel: str, days_ago: float) -> Profile:
    profile = Profile()
    fold(profile, captured(days_ago, channel, **fields))
    for kind, age in done:
        fold(profile, activity(kind, age))
    return profile


@settings(max_examples=300, deadline=None, derandomize=True)
@given(attributes, activities, channels, st.floats(0, 400))
def test_score_is_bounded_deterministic_and_explained(
    fields: dict[str, Any], done: list[tuple[str, float]], channel: str, days_ago: float
) -> None:
    profile = build(fields, done, channel, days_ago)
    first = evaluate(profile, RULES, NOW)
    assert 0 <= first.score <= 100
    assert evaluate(profile, RULES, NOW) == first
    assert sum(hit.points for hit in first.breakdown) == first.score
    assert first.fit + first.engagement + first.intent + first.negative == sum(
        hit.points for hit in first.breakdown if not hit.rule.startswith("score.")
    )


@settings(max_examples=300, deadline=None, derandomize=True)
@given(attributes, activities, channels, st.floats(0, 400), st.sampled_from(ACTIVITIES), st.floats(0, 400))
def test_a_positive_signal_never_lowers_the_score(
    fields: dict[str, Any],
    done: list[tuple[str, float]],
    channel: str,
    days_ago: float,
    extra: str,
    extra_age: float,
) -> None:
    before = evaluate(build(fields, done, channel, days_ago), RULES, NOW)
    after = evaluate(build(fields, [*done, (extra, extra_age)], channel, days_ago), RULES, NOW)
    assert after.score >= before.score
    assert after.engagement >= before.engagement and after.intent >= before.intent
