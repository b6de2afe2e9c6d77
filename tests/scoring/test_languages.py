"""Leads as people write them, in Kazakh, Russian, Azerbaijani and English: the stated
horizon, the explicit asks and the red flags (the table is tests/scoring/language_corpus.py)."""

from datetime import UTC, date, datetime

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from services.scoring.model import evaluate
from services.scoring.profile import Profile
from services.scoring.rules import default_rules_text, parse_rules
from services.scoring.timeframes import LANGUAGES, understand
from tests.scoring import factories
from tests.scoring.factories import profile_of
from tests.scoring.language_corpus import ROWS, Row

RULES = parse_rules(default_rules_text())
SAID = datetime(2026, 12, 2, 10, 0, tzinfo=UTC)  # the corpus's reference date


def lead(timeframe: str | None, message: str = "", language: str | None = None) -> Profile:
    attributes = {"timeframe": timeframe, "message": message, "language": language}
    return Profile(
        attributes={k: v for k, v in attributes.items() if v},
        channel="web_form",
        captured=True,
        captured_at=SAID,
        timeframe_at=SAID if timeframe else None,
        said_at=SAID if message else None,
    )


def judged(row: Row) -> tuple[str, str | None, str | None]:
    evaluation = evaluate(lead(row.timeframe, row.message, row.language), RULES, SAID)
    rules = [hit.rule for hit in evaluation.breakdown]
    asks = [r.removeprefix("intent.request.") for r in rules if r.startswith("intent.request.")]
    flags = [r.removeprefix("negative.") for r in rules if r.startswith("negative.")]
    return (
        evaluation.temperature,
        (asks[0] if len(asks) == 1 else ",".join(asks) or None),
        (flags[0] if len(flags) == 1 else ",".join(flags) or None),
    )


def test_the_corpus_covers_each_language_thirty_times() -> None:
    assert all(sum(row.language == language for row in ROWS) >= 30 for language in LANGUAGES)


def test_every_row_of_the_corpus_is_understood() -> None:
    wrong = [(row, got) for row in ROWS if (got := judged(row)) != (row.temperature, row.ask, row.flag)]
    accuracy = 1 - len(wrong) / len(ROWS)
    detail = "\n".join(
        f"{r.language} {r.timeframe!r} {r.message!r}: expected {(r.temperature, r.ask, r.flag)}, got {g}"
        for r, g in wrong
    )
    assert accuracy == 1.0, f"accuracy {accuracy:.1%}:\n{detail}"


@pytest.mark.parametrize(
    ("timeframe", "message", "quoted"),
    [
        ("қазір", "Қоңырау шалыңыз, өтінемін!", ["«қазір»", "«Қоңырау шалыңыз»"]),
        ("Dərhal", "Salam! Zəng edin.", ["«Dərhal»", "«Zəng edin»"]),
        ("2 АПТАДАН кейін", "", ["«2 АПТАДАН»"]),
    ],
)
def test_the_reasons_quote_the_person_as_they_wrote(timeframe: str, message: str, quoted: list[str]) -> None:
    """A rep read the customer's words folded, «казир», «конырау шалыныз», «derhal», «zeng
    edin», as the rules compare them, not as the person wrote them (found by a review)."""
    evaluation = evaluate(lead(timeframe, message), RULES, SAID)
    reasons = " | ".join(hit.reason for hit in evaluation.breakdown)
    assert all(words in reasons for words in quoted), reasons


@pytest.mark.parametrize(
    ("timeframe", "phrase"), [("сегодня", "сегодня"), ("срочно", "срочно"), ("СРОЧНО!!!", "СРОЧНО")]
)
def test_today_and_urgent_in_russian_make_a_lead_hot_and_say_why(timeframe: str, phrase: str) -> None:
    evaluation = evaluate(lead(timeframe, language="ru"), RULES, SAID)
    assert evaluation.temperature == "hot"
    line = next(hit for hit in evaluation.breakdown if hit.rule == "intent.timeframe.hot")
    assert phrase in line.reason and line.points > 0


@pytest.mark.parametrize("timeframe", ["на этой неделе", "next week", "tomorrow", "бүгін", "dərhal", "asap"])
def test_soon_in_any_language_is_hot(timeframe: str) -> None:
    assert evaluate(lead(timeframe), RULES, SAID).temperature == "hot"


@pytest.mark.parametrize(
    ("timeframe", "language", "days"),
    [
        ("екі айдан кейін", "kk", 60),  # DOMAIN.md 39: "in two months", warm
        ("2 айдан кейін", None, 60),
        ("екі айға жуық", "kk", 60),  # the seed's own words (003:57-61): about two months
        ("3 айда", "kk", 90),
        ("2 aydan sonra", "az", 60),  # DOMAIN.md 40
        ("iki aydan sonra", None, 60),
        ("1 aya", "az", 30),
        ("2 ay", "az", 60),
    ],
)
def test_months_with_a_kazakh_or_azerbaijani_case_ending_are_months(
    timeframe: str, language: str | None, days: int
) -> None:
    """ "ай" / "ay" (month) takes case endings (-дан, -ға, -да; -dan, -a): "екі айдан кейін" is
    two months, not "кейін" (later) alone, a year."""
    horizon = understand(timeframe, SAID.date(), language, RULES.timeframes.lexicon)
    assert horizon.days == days
    assert evaluate(lead(timeframe, language=language), RULES, SAID).temperature == "warm"


def test_buy_today_call_me_back_reaches_a_rep() -> None:
    evaluation = evaluate(lead(None, "хочу купить сегодня, перезвоните", "ru"), RULES, SAID)
    assert evaluation.temperature == "hot"
    assert evaluation.direct_request in {"callback_request", "one_click_order"}


@pytest.mark.parametrize(
    ("message", "language"),
    [
        ("Подумаю, перезвоню", "ru"),
        ("Посоветуюсь с директором и сам позвоню", "ru"),
        ("I will think about it, call back later", "en"),
        ("Thanks, I'll call you back next week", "en"),
        ("Ойланамын, кейін өзім хабарласамын", "kk"),
        ("Düşünəcəm, sonra özüm zəng edərəm", "az"),
    ],
)
def test_a_promise_to_call_back_is_no_callback_request(message: str, language: str) -> None:
    """DOMAIN.md 54-55 (002:54): "will call back / think / consult" signals no authority. The
    lead says they will call; they did not ask us to, so it is no ask, not hot, not SQL."""
    evaluation = evaluate(lead(None, message, language), RULES, SAID)
    assert evaluation.direct_request is None
    assert not [hit.rule for hit in evaluation.breakdown if hit.rule.startswith("intent.request.")]
    assert evaluation.temperature == "cold" and not evaluation.bant.authority


def test_asking_for_a_call_back_while_thinking_it_over_is_still_a_request() -> None:
    evaluation = evaluate(lead(None, "Подумаю, но перезвоните мне завтра", "ru"), RULES, SAID)
    assert evaluation.direct_request == "callback_request"


@pytest.mark.parametrize(
    ("message", "language"),
    [
        ("Сәлеметсіз бе, менің атым Алмас. Бізге CRM керек", "kk"),  # Almas, a name
        ("Ескі жүйені жаңасына алмастырғымыз келеді", "kk"),  # replace the old system
        ("Planlarımız dəyişdi, indi CRM lazımdır", "az"),  # our plans changed
        ("Хотим обменяться опытом и узнать о вашей CRM", "ru"),  # exchange experience
        ("We want to swap our old spreadsheets for a CRM", "en"),
    ],
)
def test_words_that_only_look_like_barter_are_no_red_flag(message: str, language: str) -> None:
    """DOMAIN.md 55-56 (002:348): the red flag is barter instead of payment, not a name or
    the verb "to change"."""
    evaluation = evaluate(lead(None, message, language), RULES, SAID)
    assert "negative.barter" not in [hit.rule for hit in evaluation.breakdown]


def test_a_timeframe_nobody_understands_shows_on_the_lead() -> None:
    evaluation = evaluate(lead("when the stars align", language="en"), RULES, SAID)
    line = next(hit for hit in evaluation.breakdown if hit.rule == "intent.timeframe.not_understood")
    assert line.points == 0 and line.reason == "timeframe not understood: «when the stars align»"
    assert evaluation.temperature == "cold"


@pytest.mark.parametrize("timeframe", ["2020-01-01", "0001-01-01", "01.06.2025", "2026-11-24"])
def test_a_date_long_gone_is_no_horizon(timeframe: str) -> None:
    """It read as "wants it now" (+30): a lead that wrote a date years back went hot, to a rep."""
    evaluation = evaluate(lead(timeframe, language="en"), RULES, SAID)
    assert evaluation.temperature == "cold"
    line = next(hit for hit in evaluation.breakdown if hit.rule == "intent.timeframe.not_understood")
    assert line.reason == f"timeframe not understood: «{timeframe}»"


@pytest.mark.parametrize("timeframe", ["2026-12-02", "2026-11-30", "2026-11-25"])
def test_a_date_gone_by_within_a_week_is_wanted_now(timeframe: str) -> None:
    """Needed already, or a day back by a time zone or a late form: still hot."""
    assert evaluate(lead(timeframe, language="en"), RULES, SAID).temperature == "hot"


def test_no_timeframe_or_an_honest_dont_know_adds_no_warning() -> None:
    for timeframe in (None, "не знаю", "unknown", "bilmirəm"):
        rules = [hit.rule for hit in evaluate(lead(timeframe), RULES, SAID).breakdown]
        assert "intent.timeframe.not_understood" not in rules, timeframe


@pytest.mark.parametrize(
    ("value", "temperature"),
    [
        ("now", "hot"),
        ("this_week", "hot"),
        ("this_month", "warm"),
        ("within_3_months", "warm"),
        ("later", "cold"),
        ("unknown", "cold"),
    ],
)
def test_the_canonical_values_a_select_sends(value: str, temperature: str) -> None:
    assert evaluate(lead(value), RULES, SAID).temperature == temperature


@pytest.mark.parametrize(
    ("timeframe", "language", "temperature"),
    [
        ("soon", "en", "hot"),
        ("скоро", "ru", "hot"),
        ("на днях", "ru", "hot"),
        ("жақында", "kk", "hot"),
        ("tezliklə", "az", "hot"),  # the four languages alike: only Azerbaijani's "soon" was read
        ("не скоро", "ru", "cold"),
        ("not anytime soon", "en", "cold"),
    ],
)
def test_soon_is_read_in_every_language(timeframe: str, language: str, temperature: str) -> None:
    evaluation = evaluate(lead(timeframe, language=language), RULES, SAID)
    assert evaluation.temperature == temperature
    assert "intent.timeframe.not_understood" not in {hit.rule for hit in evaluation.breakdown}


@pytest.mark.parametrize("value", ["this_month", "this month", "до конца месяца"])
def test_this_month_runs_to_the_months_end_chosen_or_typed(value: str) -> None:
    """Said on 25 December, "this month" is 6 days off: hot, from a select as from the words
    (the select's value was a fixed 30 days: warm, and no rep was handed the lead)."""
    late = datetime(2026, 12, 25, 10, 0, tzinfo=UTC)
    profile = lead(value).model_copy(update={"captured_at": late, "timeframe_at": late})
    assert evaluate(profile, RULES, late).temperature == "hot"
    assert understand(value, late.date(), None, RULES.timeframes.lexicon).days == 6


@pytest.mark.parametrize(
    ("timezone", "temperature"), [("Asia/Almaty", "warm"), (None, "hot"), ("Mars/Olympus", "hot")]
)
def test_a_day_relative_horizon_is_read_on_the_leads_own_day(timezone: str | None, temperature: str) -> None:
    """Said at 03:00 on 1 April in Almaty (31 March, 22:00 UTC): the month's end is 29 days
    off there, not today; it was read on the UTC date and the lead went to a rep, hot. With
    no zone, or one no zone has, the day is UTC's."""
    said = datetime(2026, 3, 31, 22, 0, tzinfo=UTC)
    attributes = {"timeframe": "до конца месяца", **({"timezone": timezone} if timezone else {})}
    profile = Profile(attributes=attributes, captured=True, captured_at=said, timeframe_at=said)
    assert evaluate(profile, RULES, said).temperature == temperature


def test_an_operator_adds_a_word_in_the_rules() -> None:
    document = default_rules_text().replace(
        "  words:\n    en: {", "  words:\n    en: {whenever the stars align: 3, ", 1
    )
    rules = parse_rules(document)
    evaluation = evaluate(lead("whenever the stars align", language="en"), rules, SAID)
    assert evaluation.temperature == "hot"


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=120), st.sampled_from([*LANGUAGES, None]))
@example("𐹠", None)  # a Rumi numeral: a digit to str.isdigit, not a number to int() (found by this test)
@example("𐹠0 days", "en")
@example("² недели", "ru")
def test_no_text_of_any_script_makes_the_parser_raise(text: str, language: str | None) -> None:
    horizon = understand(text, date(2026, 12, 2), language, RULES.timeframes.lexicon)
    assert horizon.days is None or horizon.days >= 0
    evaluate(lead(text or None, text, language), RULES, SAID)


def test_an_ask_written_in_a_chat_makes_the_lead_hot() -> None:
    profile = profile_of(
        factories.captured(0, channel="chatbot"),
        factories.activity("chat_message", 0, text="Сәлеметсіз бе! Бағасы қанша? перезвоните пожалуйста"),
    )
    evaluation = evaluate(profile, RULES, factories.NOW)
    assert evaluation.temperature == "hot"
    asks = {hit.rule for hit in evaluation.breakdown if hit.rule.startswith("intent.request.")}
    assert asks == {"intent.request.callback_request", "intent.request.price_request"}
    assert evaluation.direct_request == "callback_request"


# Said on Wednesday 2 December 2026: (text, language, days until the purchase, or None for
# "no timeframe"). Each was misread (found by a review): a year in a date taken as that many
# years, "кейін" / "sonra" ("after") or "later" hiding the date or amount it followed, a
# deadline's "не позже" negating it, a month's year or an English "Month Day" left out.
PEOPLE_WRITE = [
    ("10 декабря 2026 года", "ru", 8),
    ("10.12.2026г.", "ru", 8),
    ("5 января 2027 года", "ru", 34),
    ("5 января 2028", "ru", 399),
    ("2026 жылғы 10 желтоқсан", "kk", 8),
    ("10 dekabr 2026 il", "az", 8),
    ("January 2028", "en", 409),
    ("March 1", "en", 89),
    ("December 31", "en", 29),
    ("December 10, 2026", "en", 8),
    ("half a year", "en", 180),
    ("2 сағаттан кейін", "kk", 0),
    ("10 желтоқсаннан кейін", "kk", 8),
    ("bir saatdan sonra", "az", 0),
    ("10 dekabrdan sonra", "az", 8),
    ("in 3 hours", "en", 0),
    ("не позже 10.12", "ru", 8),
    ("не позже завтра", "ru", 1),
    ("no later than tomorrow", "en", 1),
    ("bu il", "az", 29),
    ("биыл", "kk", 29),
    ("later", "en", None),
    ("not anytime soon", "en", None),
    ("потом", "ru", None),
    ("кейін", "kk", None),
    ("sonra", "az", None),
    ("к концу месяца", "ru", 29),
    ("в конце месяца", "ru", 29),
    ("к концу недели", "ru", 4),
    ("bir neçə gün", "az", 3),
    ("bir neçə günə", "az", 3),
    ("sabaha qədər", "az", 1),
    ("a couple of weeks", "en", 14),
]


@pytest.mark.parametrize(("text", "language", "days"), PEOPLE_WRITE)
def test_a_horizon_is_read_as_people_write_it(text: str, language: str, days: int | None) -> None:
    horizon = understand(text, SAID.date(), language, RULES.timeframes.lexicon, RULES.negations.negation)
    assert (horizon.days, horizon.understood) == (days, True)


@pytest.mark.parametrize("text", ["1" * 320 + " days", "9" * 400 + " лет", "1" * 309 + ".5 weeks"])
def test_a_number_past_any_float_is_a_far_horizon_not_a_failure(text: str) -> None:
    """`round(inf)` raised OverflowError: the lead's events failed every attempt (found by a review)."""
    horizon = understand(text, SAID.date(), None, RULES.timeframes.lexicon, RULES.negations.negation)
    assert horizon.days is not None and horizon.days > 3650
    assert evaluate(lead(text, language="en"), RULES, SAID).temperature == "cold"


@pytest.mark.parametrize(
    ("message", "language"),
    [
        ("Сізге бұрын хабарласқан едім", "kk"),  # "I contacted you before"
        ("I do not want a call back", "en"),
        ("I don't want a call, just email me", "en"),
        ("Мы ценим качество", "ru"),
        ("Ценю ваше время", "ru"),
        ("How much time does installation take?", "en"),
        ("I saw your presentation at the expo", "en"),
    ],
)
def test_a_sentence_that_only_looks_like_an_ask_asks_nothing(message: str, language: str) -> None:
    """Each went straight to sales, or hot to a rep (found by a review)."""
    evaluation = evaluate(lead(None, message, language), RULES, SAID)
    assert [hit.rule for hit in evaluation.breakdown if hit.rule.startswith("intent.request.")] == []
    assert evaluation.temperature == "cold"


@pytest.mark.parametrize(
    ("message", "language", "ask"),
    [
        ("Хабарласыңызшы, өтінемін", "kk", "callback_request"),
        ("Маған хабарласа аласыз ба?", "kk", "callback_request"),
        ("Habarlasyńyz", "kk", "callback_request"),
        ("Какая цена?", "ru", "price_request"),
        ("Пришлите цены и ценник", "ru", "price_request"),
        ("How much is it?", "en", "price_request"),
        ("How much does the basic plan cost?", "en", "price_request"),
        ("Can you give us a presentation?", "en", "demo_request"),
    ],
)
def test_the_asks_those_words_stood_for_are_still_read(message: str, language: str, ask: str) -> None:
    evaluation = evaluate(lead(None, message, language), RULES, SAID)
    assert f"intent.request.{ask}" in {hit.rule for hit in evaluation.breakdown}


@pytest.mark.parametrize(
    ("timeframe", "language"), [("сейчас не актуально", "ru"), ("now is not relevant", "en")]
)
def test_now_said_not_to_matter_is_no_horizon(timeframe: str, language: str) -> None:
    assert evaluate(lead(timeframe, language=language), RULES, SAID).temperature == "cold"


@pytest.mark.parametrize(
    ("message", "authority"),
    [("I don't need to consult anyone, I decide", True), ("I need to consult my partner first", False)],
)
def test_a_hesitation_turned_around_leaves_the_authority(message: str, authority: bool) -> None:
    """ "I don't need to consult anyone" read as "need to consult": a CEO lost BANT's authority
    (found by a review)."""
    profile = lead(None, message, "en").model_copy(
        update={"attributes": {"message": message, "job_title": "CEO"}}
    )
    assert evaluate(profile, RULES, SAID).bant.authority is authority
