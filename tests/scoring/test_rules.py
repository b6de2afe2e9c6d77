"""The model against DOMAIN.md's "Classification": temperature, stages, BANT, red flags,
decay. Table-driven; each row names the passage it checks."""

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import yaml

from services.scoring.classify import decide
from services.scoring.model import evaluate
from services.scoring.profile import Profile
from services.scoring.rules import MAX_DAYS, default_rules_text, parse_rules
from services.scoring.timeframes import understand
from shared.events import ACTIVITY_RECORDED, LEAD_CAPTURED
from shared.http import InvalidInput
from shared.times import LATEST
from tests.scoring.factories import (
    NOW,
    RULES,
    activity,
    captured,
    event,
    lead,
    outcome,
    profile_of,
    updated,
)


def temperature(profile: Profile) -> str:
    return evaluate(profile, RULES, NOW).temperature


def stage(profile: Profile) -> str:
    return decide(None, None, profile, RULES, NOW).stage


def rules_hit(profile: Profile) -> dict[str, int]:
    return {hit.rule: hit.points for hit in evaluate(profile, RULES, NOW).breakdown}


@pytest.mark.parametrize(
    ("timeframe", "expected"),
    [
        ("immediately", "hot"),  # 003:57-61 needs it now
        ("now", "hot"),
        ("ASAP", "hot"),
        ("within 10 days", "hot"),
        ("2 weeks", "hot"),
        ("about two months", "warm"),  # a decision horizon of about two months
        ("2 months", "warm"),
        ("P2M", "warm"),
        ("45", "warm"),
        ("6 months", "cold"),
        ("none", "cold"),  # interest, no timeframe
        (None, "cold"),
        ("someday", "cold"),
        ("whenever the stars align", "cold"),
    ],
)
def test_temperature_follows_the_stated_timeframe(timeframe: str | None, expected: str) -> None:
    assert temperature(lead(timeframe=timeframe)) == expected


@pytest.mark.parametrize(
    ("profile", "expected"),
    [
        (lead(channel="callback_request"), "hot"),  # asks for a call now
        (lead(channel="one_click_order", phone="+77010000000"), "hot"),
        (lead(0, "web_form", activity("demo_request")), "hot"),
        (lead(0, "web_form", activity("price_request", 3)), "hot"),
        (lead(0, "web_form", activity("page_view"), activity("content_view")), "cold"),  # interest only
    ],
)
def test_an_explicit_ask_makes_a_lead_hot(profile: Profile, expected: str) -> None:
    assert temperature(profile) == expected


def test_window_boundaries_are_configuration() -> None:
    wider = RULES.model_copy(
        update={"temperature": RULES.temperature.model_copy(update={"hot_within_days": 30})}
    )
    month = lead(timeframe="30 days")
    assert evaluate(month, RULES, NOW).temperature == "warm"
    assert evaluate(month, wider, NOW).temperature == "hot"


@pytest.mark.parametrize(
    ("profile", "expected"),
    [
        (lead(20, timeframe="immediately"), "warm"),  # hot, then nothing for 20 days: cools
        (lead(100, timeframe="immediately"), "cold"),  # and after 90 days, cold
        (lead(20, "web_form", activity("form_submitted", 2), timeframe="immediately"), "hot"),  # renewed
        (lead(20, "web_form", activity("page_view", 2), timeframe="immediately"), "warm"),  # looking isn't
        (lead(151, timeframe="about two months"), "cold"),  # its day came 91 days ago
        (lead(25, "web_form", activity("demo_request", 20)), "warm"),  # an old ask cools too
        # The rep's doing is no sign of the person's interest: a note, a call nobody answered
        (
            lead(20, "web_form", activity("note", 7, text="called, no answer"), timeframe="immediately"),
            "warm",
        ),
        (
            lead(20, "web_form", activity("call_logged", 7, result="no_answer"), timeframe="immediately"),
            "warm",
        ),
        (lead(20, "web_form", activity("call_logged", 7, result="answered"), timeframe="immediately"), "hot"),
    ],
)
def test_an_inactive_lead_cools(profile: Profile, expected: str) -> None:
    assert temperature(profile) == expected


@pytest.mark.parametrize(
    ("timeframe", "days_ago", "expected", "reason"),
    [
        ("2 months", 0, "warm", "buying within 60 days («2 months»)"),
        ("2 months", 45, "warm", "buying within 15 days («2 months»), said 45 days ago"),
        ("2 months", 50, "hot", "buying within 10 days («2 months»), said 50 days ago"),
        ("2 months", 70, "hot", "buying by now («2 months»), said 70 days ago"),  # its day, 10 days ago
        ("2 months", 75, "warm", "buying by now («2 months»), said 75 days ago"),  # then cools as an ask
        ("2 months", 151, "cold", None),
        ("6 months", 0, "cold", None),  # 180 days: too far
        ("6 months", 100, "warm", "buying within 80 days («6 months»), said 100 days ago"),
        ("6 months", 170, "hot", "buying within 10 days («6 months»), said 170 days ago"),
        ("2 weeks", 10, "hot", "buying within 4 days («2 weeks»), said 10 days ago"),
        ("2 weeks", 20, "hot", "buying by now («2 weeks»), said 20 days ago"),  # not cooled from the saying
        ("2 weeks", 29, "warm", "buying by now («2 weeks»), said 29 days ago"),
    ],
)
def test_a_stated_horizon_counts_down_to_its_day_then_cools(
    timeframe: str, days_ago: int, expected: str, reason: str | None
) -> None:
    """003:57-61 read over time: "about two months" said 50 days ago is 10 days off now, hot,
    and goes to a rep; past its day, with no new sign of interest, it cools as an ask does."""
    evaluation = evaluate(lead(days_ago, timeframe=timeframe), RULES, NOW)
    assert evaluation.temperature == expected
    lines = {hit.rule: hit.reason for hit in evaluation.breakdown}
    assert lines.get(f"intent.timeframe.{expected}") == reason


def test_a_lead_is_reviewed_when_its_horizon_enters_the_next_window() -> None:
    """The time pass re-decides a lead at `review_at`: a horizon's turn to warm, then to hot,
    then its cooling; a cold lead with a far horizon has one too."""
    said = NOW
    moments = []
    at = NOW
    profile = lead(0, timeframe="6 months")  # 180 days
    while (review := evaluate(profile, RULES, at).review_at) is not None:
        moments.append(((review - said).days, evaluate(profile, RULES, review).temperature))
        at = review
    assert moments == [(90, "warm"), (166, "hot"), (194, "warm"), (270, "cold")]


def test_calls_nobody_answered_earn_no_engagement_but_count_as_unreachable() -> None:
    unanswered = lead(0, "web_form", *(activity("call_logged", result=r) for r in ("busy", "voicemail")))
    assert "engagement.call_logged" not in rules_hit(unanswered)
    answered = lead(0, "web_form", activity("call_logged", result="answered"))
    assert rules_hit(answered)["engagement.call_logged"] == 5
    third = lead(
        0, "web_form", *(activity("call_logged", result=r) for r in ("busy", "voicemail", "no_answer"))
    )
    assert rules_hit(third)["negative.unreachable"] == -15


def test_engagement_decays_by_half_life_and_is_capped() -> None:
    fresh = lead(0, "web_form", *(activity("content_view") for _ in range(2)))
    month_old = lead(0, "web_form", *(activity("content_view", 30) for _ in range(2)))
    flood = lead(0, "web_form", *(activity("page_view") for _ in range(50)))
    assert rules_hit(fresh)["engagement.content_view"] == 6
    assert rules_hit(month_old)["engagement.content_view"] == 3  # one half-life: half the points
    assert rules_hit(flood)["engagement.page_view"] == 8  # the cap


@pytest.mark.parametrize(
    ("profile", "expected"),
    [
        (lead(channel="newsletter"), "suspect"),  # got information only
        (lead(0, "import"), "suspect"),  # a purchased list
        (lead(0, "import", first_name="Aigerim", company="Qazaq Trade"), "suspect"),  # its row, named
        (lead(0, "api"), "suspect"),  # a record a server sent: nothing the person did
        # answered an ad: its lead form holds what the person typed in, a "direct response from
        # advertising" (003:5), a lead like a web form's
        (lead(0, "ad", first_name="Aigerim", company="Qazaq Trade"), "lead"),
        (lead(0, "ad"), "lead"),
        (lead(0, "newsletter", activity("page_view")), "suspect"),
        (lead(0, "newsletter", activity("chat_message")), "lead"),  # now it talks to us
        (lead(), "lead"),  # a form on the site
        (lead(timeframe="none"), "lead"),
        (
            lead(0, "web_form", *(activity("webinar_attended") for _ in range(2)), job_title="CEO"),
            "mql",
        ),  # fits (an executive) and engaged, no near timeframe
        (lead(timeframe="immediately", need="Kaspi integration", is_decision_maker=True), "sql"),
        (lead(channel="one_click_order"), "sql"),  # an order goes straight to sales
        (lead(0, "web_form", email="x@mailinator.com"), "lead"),  # a red flag, not a verdict
    ],
)
def test_stage_from_the_evaluation(profile: Profile, expected: str) -> None:
    assert stage(profile) == expected


def test_a_hot_lead_is_never_an_mql() -> None:
    """MQL is "not ready to buy soon" (003:63-65): a hot lead that is not yet sales-qualified
    (no authority: "подумаю и посоветуюсь") stays a lead, with a rep, and is not announced to
    marketing as `lead.mql`; a warm one of that score is one."""
    words = {"need": "Kaspi integration", "is_decision_maker": True, "message": "подумаю и посоветуюсь"}
    hot = lead(timeframe="immediately", **words)
    evaluation = evaluate(hot, RULES, NOW)
    assert evaluation.temperature == "hot" and evaluation.score >= RULES.stages.mql.min_score
    assert stage(hot) == "lead"
    warm = lead(timeframe="about two months", job_title="CEO", budget=5000, **words)
    assert evaluate(warm, RULES, NOW).temperature == "warm" and stage(warm) == "mql"  # not ready soon


@pytest.mark.parametrize(
    ("attributes", "is_sql"),
    [
        ({"need": "CRM", "is_decision_maker": True}, True),  # strong desire outweighs no budget (002:50)
        ({"need": "CRM", "budget": 5000}, True),
        ({"budget": 5000, "job_title": "Director"}, True),
        ({"need": "CRM"}, False),  # need and desire alone are two of four
        ({"need": "CRM", "job_title": "CEO", "message": "подумаю, посоветуюсь"}, False),  # no authority
        ({"need": "CRM", "job_title": "CEO", "message": "I will think about it", "budget": 2000}, True),
        ({"message": "Hello", "is_decision_maker": True}, False),  # a greeting states no need
        ({"message": "Здравствуйте! Спасибо.", "is_decision_maker": True}, False),
        ({"message": "Сәлем, бізге CRM керек", "is_decision_maker": True}, True),  # "we need a CRM"
    ],
)
def test_sql_needs_desire_and_three_bant_signals(attributes: dict[str, object], is_sql: bool) -> None:
    assert (stage(lead(timeframe="immediately", **attributes)) == "sql") is is_sql


def test_warm_leads_are_never_sql_on_bant_alone() -> None:
    warm = lead(timeframe="about two months", need="CRM", budget=50000, is_decision_maker=True)
    assert stage(warm) != "sql"


@pytest.mark.parametrize(
    ("profile", "rule", "points", "disqualifies"),
    [
        (lead(0, "web_form", email="x@mailinator.com"), "negative.disposable_domain", -30, False),
        (lead(message="Can we pay by barter?"), "negative.barter", -15, False),  # 002:348-352
        (lead(message="We expect VIP service"), "negative.vip_demands", -10, False),
        (
            lead(0, "web_form", *(activity("call_logged", result="unreachable") for _ in range(3))),
            "negative.unreachable",
            -15,
            False,
        ),
        (lead(0, "web_form", outcome("sales_rejected", reason="spam")), "negative.spam", -100, True),
        (lead(message="Just asking, inquiry only"), "negative.inquiry_only", -20, True),  # 002:220
    ],
)
def test_red_flags(profile: Profile, rule: str, points: int, disqualifies: bool) -> None:
    evaluation = evaluate(profile, RULES, NOW)
    assert rules_hit(profile)[rule] == points
    assert (evaluation.disqualified_by is not None) is disqualifies


def test_a_competitor_is_disqualified() -> None:
    rules = RULES.model_copy(
        update={
            "negative": RULES.negative.model_copy(
                update={
                    "competitor_domains": RULES.negative.competitor_domains.model_copy(
                        update={"domains": ["rival.kz"]}
                    )
                }
            )
        }
    )
    profile = lead(0, "web_form", email="spy@rival.kz")
    decision = decide(None, None, profile, rules, NOW)
    assert decision.stage == "disqualified"
    assert "negative.competitor" in {h.rule for h in decision.evaluation.breakdown}


def test_objections_do_not_lower_a_score() -> None:
    """80% of ready buyers fake objections (002:212)."""
    plain = evaluate(lead(timeframe="immediately"), RULES, NOW).score
    objecting = evaluate(lead(timeframe="immediately", message="Too expensive, not sure"), RULES, NOW).score
    assert objecting >= plain


def test_breakdown_caps_at_100_and_still_sums() -> None:
    everything = lead(
        0,
        "one_click_order",
        activity("demo_request"),
        activity("price_request"),
        activity("trial_started"),
        *(activity("form_submitted") for _ in range(3)),
        timeframe="now",
        need="CRM",
        job_title="CEO",
        is_decision_maker=True,
        company_size="500",
        budget=50000,
    )
    evaluation = evaluate(everything, RULES, NOW)
    assert evaluation.score == 100
    assert sum(hit.points for hit in evaluation.breakdown) == 100
    assert evaluation.breakdown[-1].rule == "score.cap"


def test_progressive_profiling_merges_and_keeps_contact() -> None:
    profile = profile_of(
        captured(1, email="a@qazaq.kz", company="Qazaq"), updated(0, email="b@qazaq.kz", timeframe="now")
    )
    assert profile.attributes["email"] == "a@qazaq.kz"  # filled, never overwritten
    assert profile.attributes["company"] == "Qazaq" and profile.attributes["timeframe"] == "now"
    assert temperature(profile) == "hot"


def test_unparseable_timeframe_counts_as_none() -> None:
    horizon = understand("whenever the stars align", NOW.date(), "en", RULES.timeframes.lexicon)
    assert horizon.days is None and not horizon.understood


def test_rules_stored_before_negations_read_them_as_the_built_in_rules_do() -> None:
    """A version saved before the rules held negations (`PUT /v1/rules`) is read with the
    built-in ones: "not now" stays no "now" after an upgrade."""
    document = yaml.safe_load(default_rules_text())
    del document["negations"]
    older = parse_rules(document)
    profile = profile_of(captured(0, timeframe="not now", message="please don't call me"))
    assert evaluate(profile, older, NOW).temperature == "cold"


def test_an_operator_adds_a_negation_in_the_rules() -> None:
    document = yaml.safe_load(default_rules_text())
    document["negations"]["before"]["en"].append("hardly")
    rules = parse_rules(document)
    profile = profile_of(captured(0, timeframe="hardly urgent"))
    assert temperature(profile) == "hot" and evaluate(profile, rules, NOW).temperature == "cold"


def longest_spans() -> dict[str, Any]:
    """The default rules with every span the model adds to a date at its upper bound."""
    rules = yaml.safe_load(default_rules_text())
    rules["temperature"]["cool_after_days"] = {"hot": MAX_DAYS, "warm": MAX_DAYS}
    rules["engagement"]["half_life_days"] = MAX_DAYS
    rules["engagement"]["review_every_hours"] = 365 * 24
    return rules


def refused(document: dict[str, Any]) -> list[str]:
    with pytest.raises(InvalidInput) as refusal:
        parse_rules(document)
    return [field for field, _ in refusal.value.errors]


@pytest.mark.parametrize(
    ("section", "name", "value", "fields"),
    [
        ("temperature", "cool_after_days", {"hot": 1e9, "warm": 1e9}, ["hot", "warm"]),
        ("temperature", "cool_after_days", {"hot": 14, "warm": MAX_DAYS + 1}, ["warm"]),
        ("temperature", "cool_after_days", {"hot": float("nan"), "warm": 90}, ["hot"]),
        ("engagement", "review_every_hours", 1e308, []),
        ("engagement", "review_every_hours", float("inf"), []),
        ("engagement", "review_every_hours", 1e-9, []),  # a review at the same instant, forever
        ("engagement", "half_life_days", float("inf"), []),
        ("engagement", "half_life_days", MAX_DAYS + 1, []),
        ("temperature", "warm_within_days", 10**9, []),  # a horizon's window, counted back from its day
        ("temperature", "hot_within_days", MAX_DAYS + 1, []),
    ],
)
def test_a_span_beyond_its_bound_is_refused_naming_it(
    section: str, name: str, value: Any, fields: list[str]
) -> None:
    rules = yaml.safe_load(default_rules_text())
    rules[section][name] = value
    where = f"{section}.{name}"
    assert refused(rules) == ([f"{where}.{field}" for field in fields] or [where])


@pytest.mark.parametrize(
    "timeframe",
    [
        "999999999",
        "1000000000",
        "P99999999999Y",
        "p3000000y",
        "99999999999 лет",
        "in 3000000 years",
    ],
)
@pytest.mark.parametrize(
    "at",
    [NOW, datetime(1, 1, 1, tzinfo=UTC), LATEST - timedelta(days=1)],
    ids=["recently", "year 1", "year 9998"],
)
def test_a_horizon_past_the_calendars_end_is_far_not_a_failure(timeframe: str, at: datetime) -> None:
    """Anyone may type a billion days in a public form: scoring reads it as far off (cold) and
    never fails on the lead, with the widest windows the rules allow, west of Greenwich too."""
    widest = longest_spans()
    widest["temperature"].update(hot_within_days=MAX_DAYS, warm_within_days=MAX_DAYS)
    said = event(
        LEAD_CAPTURED,
        at,
        channel="web_form",
        captured_at=at.isoformat(),
        timeframe=timeframe,
        timezone="America/New_York",
    )
    profile = profile_of(said)
    for rules in (RULES, parse_rules(widest)):
        assert evaluate(profile, rules, NOW).temperature == "cold"


def test_a_timeframe_said_in_year_one_west_of_greenwich_is_read() -> None:
    """Year 1's first hours are before the first day a date holds in New York: its UTC day."""
    said = activity("form_submitted", at=datetime(1, 1, 1, tzinfo=UTC), timeframe="next month")
    profile = profile_of(said, updated(0, timezone="America/New_York"))
    assert evaluate(profile, RULES, NOW).temperature == "cold"  # its month came long ago


def test_nan_and_infinity_are_no_numbers_of_the_rules() -> None:
    rules = yaml.safe_load(default_rules_text())
    rules["stages"]["sql"]["budget_at_least"] = float("nan")
    rules["fit"]["budget"][0]["min"] = float("inf")
    assert sorted(refused(rules)) == ["fit.budget.0.min", "stages.sql.budget_at_least"]


@pytest.mark.parametrize(
    "at",
    [NOW, datetime(1, 1, 1, tzinfo=UTC), LATEST - timedelta(days=1), LATEST],
    ids=["recently", "year 1", "year 9998", "latest"],
)
@pytest.mark.parametrize("now", [NOW, LATEST], ids=["now", "now latest"])
def test_the_longest_spans_keep_every_date_in_range(at: datetime, now: datetime) -> None:
    longest = parse_rules(longest_spans())
    asked = profile_of(
        event(LEAD_CAPTURED, at, channel="web_form", captured_at=at.isoformat(), timeframe="now"),
        event(ACTIVITY_RECORDED, at, activity_type="callback_request", occurred_at=at.isoformat()),
        event(ACTIVITY_RECORDED, at, activity_type="webinar_attended", occurred_at=at.isoformat()),
    )
    evaluation = evaluate(asked, longest, now)
    assert decide(None, None, asked, longest, now).evaluation == evaluation
    year_on = now + timedelta(days=365) if now < LATEST else None  # the review, where a year on exists
    if now - at <= timedelta(days=MAX_DAYS):  # asked within ten years (or later than now): hot
        assert (evaluation.temperature, evaluation.review_at) == ("hot", year_on)
        assert evaluation.engagement > 0
    else:  # asked longer ago: cold, and nothing left to decay
        assert (evaluation.temperature, evaluation.review_at, evaluation.engagement) == ("cold", None, 0)


@pytest.mark.parametrize(
    ("written", "number"),
    [
        ("1,000+", 1000.0),
        ("10,000", 10000.0),
        ("1.000.000", 1000000.0),
        ("1,000.50", 1000.5),
        ("1.000,50", 1000.5),
        ("1,5", 1.5),
        ("12,50", 12.5),
        ("2.5", 2.5),
        ("11-50", 11.0),
        ("250+", 250.0),
        ("1 000 000 ₸", 1000000.0),
        ("about 300", 300.0),
    ],
)
def test_a_number_written_with_thousands_separators_is_read_whole(written: str, number: float) -> None:
    """ "1,000+" employees read as 1 (no fit points), "10,000" as a small company (found by a review)."""
    from services.scoring.matching import number_in

    assert number_in(written) == number


def test_a_company_of_a_thousand_or_more_is_no_company_of_one() -> None:
    big = evaluate(lead(company_size="1,000+"), RULES, NOW)
    one = evaluate(lead(company_size="1"), RULES, NOW)
    assert big.fit > one.fit
