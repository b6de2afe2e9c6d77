"""The scoring model: a profile and the rules in, a score with its reasons out. Pure, no I/O.

score = fit + engagement + intent + negative, kept within 0..100; the breakdown lists every
rule that gave or took points, and always sums to the score (a cap or floor is a line too).
"""

import re
from dataclasses import dataclass
from datetime import datetime

from services.scoring.clocks import next_review
from services.scoring.matching import derived, number_in
from services.scoring.negation import said
from services.scoring.points import engagement_hits, fit_hits, negative_hits
from services.scoring.profile import Profile
from services.scoring.rules import Rules, Temperature
from services.scoring.temperature import fresh_requests, interest_shown, temperature_and_intent
from services.scoring.wording import fold, phrase_pattern
from shared.events import RuleHit

WORD = re.compile(r"\w")


@dataclass(frozen=True)
class Bant:
    """Qualification signals (002:32-54): need, desire, budget, decision authority."""

    need: bool
    desire: bool
    budget: bool
    authority: bool

    @property
    def count(self) -> int:
        return sum((self.need, self.desire, self.budget, self.authority))

    def as_dict(self) -> dict[str, bool]:
        return {"need": self.need, "desire": self.desire, "budget": self.budget, "authority": self.authority}


@dataclass(frozen=True)
class Evaluation:
    score: int
    fit: int
    engagement: int
    intent: int
    negative: int
    breakdown: list[RuleHit]
    temperature: Temperature
    bant: Bant
    interested: bool  # beyond looking around: a suspect is not
    direct_request: str | None  # an ask that goes straight to sales
    disqualified_by: str | None  # the rule that rules the lead out
    review_at: datetime | None  # when time alone may change this evaluation


def evaluate(profile: Profile, rules: Rules, now: datetime) -> Evaluation:
    fit, authority_title = fit_hits(profile, rules)
    engagement = engagement_hits(profile, rules, now)
    asked = fresh_requests(profile, rules, now)
    temperature, clocks, intent = temperature_and_intent(profile, rules, now, asked)
    text = "\n".join(profile.texts())  # where red flags and hesitation show
    negative, disqualified_by = negative_hits(profile, rules, text)
    hits = [*intent, *fit, *engagement, *negative]
    parts = {"fit": _points(fit), "engagement": _points(engagement), "intent": _points(intent)}
    parts["negative"] = _points(negative)
    raw = sum(parts.values())
    if raw > 100:
        hits.append(RuleHit(rule="score.cap", points=100 - raw, reason="score is at most 100"))
    elif raw < 0:
        hits.append(RuleHit(rule="score.floor", points=-raw, reason="score is at least 0"))
    bant = _bant(profile, rules, temperature, authority_title, text)
    return Evaluation(
        score=min(100, max(0, raw)),
        fit=parts["fit"],
        engagement=parts["engagement"],
        intent=parts["intent"],
        negative=parts["negative"],
        breakdown=hits,
        temperature=temperature,
        bant=bant,
        interested=_interested(profile, rules),
        direct_request=_direct_request(rules, asked),
        disqualified_by=disqualified_by,
        review_at=next_review(rules, now, clocks, parts["engagement"]),
    )


def _points(hits: list[RuleHit]) -> int:
    return sum([hit.points for hit in hits])


def _direct_request(rules: Rules, asked: list[tuple[str, datetime, str | None]]) -> str | None:
    kinds = {kind for kind, _, _ in asked}
    return next((r for r in rules.stages.sql.direct_requests if r in kinds), None)


def _bant(profile: Profile, rules: Rules, temperature: Temperature, authority_title: bool, text: str) -> Bant:
    a = profile.attributes
    need = _stated(a.get("need")) or _says_more_than(a.get("message"), rules.stages.pleasantries)
    budget = (number_in(a.get("budget")) or 0) >= rules.stages.sql.budget_at_least
    # "I need to consult", not "I don't need to consult anyone": a hesitation turned around is none
    promised = derived(rules.stages.no_authority_phrases, tuple)
    hesitant = bool(text) and said(fold(text), promised, rules.negations.negation) is not None
    authority = (a.get("is_decision_maker") is True or authority_title) and not hesitant
    return Bant(need=need, desire=temperature == "hot", budget=budget, authority=authority)


def _stated(value: object) -> bool:
    return isinstance(value, str) and bool(value.strip())


def _says_more_than(message: object, pleasantries: list[str]) -> bool:
    """A message that is more than a greeting or thanks ("Hello!", "Спасибо"): a need, or a start of one."""
    if not _stated(message):
        return False
    pattern = derived(pleasantries, _pattern_of)
    rest = pattern.sub(" ", fold(str(message))) if pattern is not None else str(message)
    return WORD.search(rest) is not None


def _pattern_of(phrases: list[str]) -> re.Pattern[str] | None:
    return phrase_pattern(tuple(phrases))


def _interested(profile: Profile, rules: Rules) -> bool:
    """More than looking around: a capture outside the suspect channels (a form, a call, a
    visit), a stated timeframe or need, or an activity that shows the person's interest."""
    a = profile.attributes
    if profile.captured and profile.channel not in rules.stages.suspect_channels:
        return True
    if any(a.get(k) for k in ("timeframe", "need", "message")):
        return True
    return bool(interest_shown(profile, rules))
