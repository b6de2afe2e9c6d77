"""The scoring rules: a versioned YAML document, validated when loaded (DOMAIN.md "Classification").

Every number the model uses lives here, so a sales team changes its definition of hot or
MQL by editing the rules (`PUT /v1/rules`), not the code. `default_rules.yaml` is the
first version; its comments say where each default comes from.
"""

from functools import cache, cached_property
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from services.scoring.negation import Negation, compiled
from services.scoring.timeframe_lexicon import Lexicon, lexicon
from shared.documents import parse_document

Temperature = Literal["cold", "warm", "hot"]
Language = Literal["kk", "ru", "az", "en"]
Anchor = Literal["end_of_week", "end_of_month", "end_of_quarter", "end_of_year"]
Points = Annotated[int, Field(ge=-100, le=100)]
Positive = Annotated[int, Field(ge=0, le=100)]
Negative = Annotated[int, Field(ge=-100, le=0)]
Phrases = Annotated[list[Annotated[str, Field(min_length=1)]], Field(min_length=1)]
# A phrase list for all languages, or one per language; a phrase ending in `*` is a stem.
PhrasesByLanguage = Phrases | dict[Language, Phrases]


def every_phrase(phrases: PhrasesByLanguage) -> tuple[str, ...]:
    """All the phrases, whatever their language (a text may mix languages)."""
    if isinstance(phrases, dict):
        return tuple(p for language in sorted(phrases) for p in phrases[language])
    return tuple(phrases)


DEFAULT_RULES = Path(__file__).with_name("default_rules.yaml")


# The longest span the model adds to a date: ten years. Beyond it no lead is ever warm or
# reviewed, and a date plus it must stay within the years a datetime holds (to 9999).
MAX_DAYS = 3650
Days = Annotated[float, Field(gt=0, le=MAX_DAYS)]
# A review at least every 36 seconds (a zero-length step would review a lead again and again
# at the same instant) and at most once a year.
ReviewHours = Annotated[float, Field(ge=0.01, le=365 * 24)]


class _Strict(BaseModel):
    # NaN and infinity are no numbers a rule can mean, and JSON cannot store them.
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)


class KeywordRule(_Strict):
    """Points when a text field contains any of the phrases (case-insensitive)."""

    name: Annotated[str, Field(pattern=r"^[a-z0-9_]+$")]
    phrases: Phrases
    points: Points
    reason: str
    authority: bool = False  # the title means decision authority (BANT "A")


class Threshold(_Strict):
    """Points when a number is at least `min`; the highest matching threshold applies."""

    min: float
    points: Positive
    reason: str


class ValueSet(_Strict):
    values: list[str] = []
    points: Positive = 0
    reason: str = ""


class FitRules(_Strict):
    """Who the person is: do they look like our buyer."""

    job_title: list[KeywordRule] = []
    decision_maker: Positive = 0
    company_size: list[Threshold] = []
    industry: ValueSet = ValueSet()
    country: ValueSet = ValueSet()
    budget: list[Threshold] = []


class ActivityRule(_Strict):
    points: Positive
    cap: Positive  # the most this activity type can add, however often it happens
    passive: bool = False  # looking around (a page view) is not yet interest in buying


class EngagementRules(_Strict):
    """What the person did, worth less as it ages (points halve every `half_life_days`)."""

    half_life_days: Days
    activities: dict[str, ActivityRule]
    review_every_hours: ReviewHours = 24


class IntentRules(_Strict):
    """What the person asked for."""

    timeframe: dict[Temperature, Positive]
    requests: dict[str, Positive] = {}  # activity types that are explicit asks (hot)
    # The same asks said in the message or need ("перезвоните", "бағасы қанша", "zəng edin").
    phrases: dict[str, PhrasesByLanguage] = {}
    need: Positive = 0

    @model_validator(mode="after")
    def _phrases_name_requests(self) -> "IntentRules":
        unknown = sorted(set(self.phrases) - set(self.requests))
        if unknown:
            raise ValueError(f"intent.phrases names asks not in intent.requests: {unknown}")
        return self


class DomainRule(_Strict):
    domains: list[str] = []
    points: Negative = 0
    reason: str = ""
    disqualify: bool = False


class PhraseRule(_Strict):
    name: Annotated[str, Field(pattern=r"^[a-z0-9_]+$")]
    phrases: PhrasesByLanguage
    points: Negative
    reason: str
    disqualify: bool = False
    # Phrases that say one of `phrases` without meaning it: "went to my spam folder" is no spam.
    unless: PhrasesByLanguage | None = None


class UnreachableRule(_Strict):
    after_attempts: Annotated[int, Field(ge=1)] = 3
    points: Negative = 0
    reason: str = "could not be reached"


class NegativeRules(_Strict):
    """Red flags: signs that predict no sale. Objections are not among them (002:212)."""

    disposable_domains: DomainRule = DomainRule()
    competitor_domains: DomainRule = DomainRule()
    phrases: list[PhraseRule] = []  # in the message, the need, notes or a rejection reason
    unreachable: UnreachableRule = UnreachableRule()


class TemperatureRules(_Strict):
    hot_within_days: Annotated[int, Field(ge=0, le=MAX_DAYS)]
    warm_within_days: Annotated[int, Field(ge=0, le=MAX_DAYS)]
    cool_after_days: dict[Literal["hot", "warm"], Days]

    @model_validator(mode="after")
    def _ordered(self) -> "TemperatureRules":
        if self.warm_within_days < self.hot_within_days:
            raise ValueError("warm_within_days must be at least hot_within_days")
        if set(self.cool_after_days) != {"hot", "warm"}:
            raise ValueError("cool_after_days needs both hot and warm")
        if self.cool_after_days["warm"] < self.cool_after_days["hot"]:
            raise ValueError("cool_after_days.warm must be at least cool_after_days.hot")
        return self


class MqlRules(_Strict):
    min_fit: Positive
    min_engagement: Positive
    min_score: Positive  # or a total this high


class SqlRules(_Strict):
    min_bant: Annotated[int, Field(ge=1, le=4)]
    direct_requests: list[str] = []  # asks that go straight to sales (an order, a callback)
    budget_at_least: float = 1


class StageRules(_Strict):
    suspect_channels: list[str] = []  # a bare contact from these has only looked around
    mql: MqlRules
    sql: SqlRules
    no_authority_phrases: list[str] = []  # "will think / consult / call back" (002)
    # A message of only these (a greeting, thanks) states no need: "Hello" is no BANT need
    pleasantries: list[str] = []
    # An input dated more than this before ingest recorded it is history, handed to no rep
    # (`backdating`); a version stored without it reads the built-in hour.
    history_after_minutes: Annotated[int, Field(ge=0, le=MAX_DAYS * 1440)] = 60


class TimeframeRules(_Strict):
    """How people state when they will buy, per language (the lead's `language` is tried first).
    What the vocabulary does not know is read by dateparser; what nobody understood shows on
    the lead as a line of 0 points."""

    words: dict[Language, dict[str, Annotated[int, Field(ge=0, le=3650)] | Anchor]] = {}
    units: dict[Language, dict[str, Annotated[int, Field(ge=0, le=3650)]]] = {}  # hours: 0
    numbers: dict[Language, dict[str, Annotated[float, Field(ge=0, le=1000)]]] = {}
    months: dict[Language, Annotated[list[str], Field(min_length=12, max_length=12)]] = {}
    unknown: dict[Language, list[str]] = {}

    @cached_property
    def lexicon(self) -> Lexicon:
        return lexicon(self.words, self.units, self.numbers, self.months, self.unknown)  # type: ignore[arg-type]


class Negations(_Strict):
    """Words beside a horizon or an ask that turn it around, per language (`negation`):
    "не сейчас", "not urgent", "don't call me", "қазір емес", "indi yox", "қоңырау шалмаңыз"."""

    before: dict[Language, list[str]] = {}  # right before it, in its clause
    after: dict[Language, list[str]] = {}  # right after it
    endings: dict[Language, list[str]] = {}  # a stem's negative ending: the verb says "don't"

    @cached_property
    def negation(self) -> Negation:
        def every(by_language: dict[Language, list[str]]) -> list[str]:
            return [word for language in sorted(by_language) for word in by_language[language]]

        return compiled(every(self.before), every(self.after), every(self.endings))


@cache
def builtin_negations() -> Negations:
    """The negations of the built-in rules, for a version stored before the rules held them."""
    return parse_rules(default_rules_text()).negations


@cache
def builtin_timeframes() -> TimeframeRules:
    """The vocabulary of the built-in rules, for a version that states none: one stored before
    the rules held a vocabulary (it was built into the code then) meant these words, and read
    with none, "immediately" and "asap" made a lead cold."""
    return parse_rules(default_rules_text()).timeframes  # the built-in rules state theirs


class Rules(_Strict):
    fit: FitRules
    engagement: EngagementRules
    intent: IntentRules
    negative: NegativeRules
    temperature: TemperatureRules
    stages: StageRules
    timeframes: TimeframeRules = Field(default_factory=builtin_timeframes)
    negations: Negations = Field(default_factory=builtin_negations)

    @model_validator(mode="after")
    def _requests_are_activities(self) -> "Rules":
        unknown = [r for r in self.intent.requests if r not in self.engagement.activities]
        if unknown:
            raise ValueError(f"intent.requests names activities not in engagement.activities: {unknown}")
        return self


def parse_rules(document: str | dict[str, Any]) -> Rules:
    """Rules from YAML text or a parsed mapping; InvalidInput says what is wrong and where."""
    return parse_document(document, Rules)


def default_rules_text() -> str:
    return DEFAULT_RULES.read_text(encoding="utf-8")


def temperature_for(days: int | None, rules: TemperatureRules) -> Temperature:
    """The temperature a stated horizon means: now or soon → hot, about two months → warm,
    none or far → cold (003:57-61)."""
    if days is None:
        return "cold"
    if days <= rules.hot_within_days:
        return "hot"
    if days <= rules.warm_within_days:
        return "warm"
    return "cold"
