"""The points of fit, engagement and negative signals: each rule that gives or takes some, a hit."""

import re
from datetime import datetime
from typing import Any

from services.scoring.matching import derived, keyword_pattern, lowered, number_in
from services.scoring.profile import Profile
from services.scoring.rules import KeywordRule, PhrasesByLanguage, Rules, Threshold, every_phrase
from services.scoring.wording import find_phrase, fold, phrase_pattern
from shared.events import RuleHit

# --- fit ---------------------------------------------------------------------------------


def fit_hits(profile: Profile, rules: Rules) -> tuple[list[RuleHit], bool]:
    a, fit = profile.attributes, rules.fit
    hits: list[RuleHit] = []
    authority = False
    title_rule = _first_match(fit.job_title, a.get("job_title"))
    if title_rule is not None:
        rule = f"fit.job_title.{title_rule.name}"
        hits.append(RuleHit(rule=rule, points=title_rule.points, reason=title_rule.reason))
        authority = title_rule.authority
    if a.get("is_decision_maker") is True and fit.decision_maker:
        reason = "makes the decision"
        hits.append(RuleHit(rule="fit.decision_maker", points=fit.decision_maker, reason=reason))
    size = number_in(a.get("company_size"))
    if (step := _threshold(fit.company_size, size)) is not None:
        hits.append(RuleHit(rule="fit.company_size", points=step.points, reason=step.reason))
    for field, values in (("industry", fit.industry), ("country", fit.country)):
        value = str(a.get(field) or "").strip().lower()
        if value and values.points and value in derived(values.values, lowered):
            hits.append(RuleHit(rule=f"fit.{field}", points=values.points, reason=values.reason))
    if (step := _threshold(fit.budget, number_in(a.get("budget")))) is not None:
        hits.append(RuleHit(rule="fit.budget", points=step.points, reason=step.reason))
    return hits, authority


def _first_match(candidates: list[KeywordRule], text: Any) -> KeywordRule | None:
    if not isinstance(text, str) or not text:
        return None
    return next((rule for rule, pattern in derived(candidates, _patterns) if pattern.search(text)), None)


def _patterns(candidates: list[KeywordRule]) -> list[tuple[KeywordRule, re.Pattern[str]]]:
    return [(rule, keyword_pattern(tuple(rule.phrases))) for rule in candidates if rule.phrases]


def _threshold(steps: list[Threshold], value: float | None) -> Threshold | None:
    if value is None:
        return None
    return next((step for step in derived(steps, _highest_first) if value >= step.min), None)


def _highest_first(steps: list[Threshold]) -> list[Threshold]:
    return sorted(steps, key=lambda s: s.min, reverse=True)  # stable: of equal ones, the first


# --- engagement --------------------------------------------------------------------------


def engagement_hits(profile: Profile, rules: Rules, now: datetime) -> list[RuleHit]:
    half_life = rules.engagement.half_life_days * 86400
    hits = []
    for kind in sorted(profile.activities):
        rule = rules.engagement.activities.get(kind)
        if rule is None or rule.points == 0:
            continue
        times = profile.activities[kind].recent
        weight = sum([0.5 ** (max(0.0, (now - t).total_seconds()) / half_life) for t in times])
        points = min(rule.cap, round(rule.points * weight))
        if points:
            count = profile.activities[kind].count
            reason = f"{count} x {kind.replace('_', ' ')}" + (" (capped)" if points == rule.cap else "")
            hits.append(RuleHit(rule=f"engagement.{kind}", points=points, reason=reason))
    return hits


# --- negative ----------------------------------------------------------------------------


def negative_hits(profile: Profile, rules: Rules, text: str) -> tuple[list[RuleHit], str | None]:
    negative = rules.negative
    hits: list[RuleHit] = []
    disqualified_by = None
    domain = str(profile.attributes.get("email") or "").rpartition("@")[2].lower()
    domains = (
        ("disposable_domain", negative.disposable_domains),
        ("competitor", negative.competitor_domains),
    )
    for name, rule in domains:
        if domain and rule.points and domain in derived(rule.domains, lowered):
            hits.append(RuleHit(rule=f"negative.{name}", points=rule.points, reason=rule.reason))
            disqualified_by = disqualified_by or (f"negative.{name}" if rule.disqualify else None)
    folded = fold(text)
    for phrase_rule in negative.phrases if folded else ():
        meant = _without(folded, phrase_rule.unless)
        if meant and find_phrase(meant, derived(phrase_rule.phrases, every_phrase)) is not None:
            name = f"negative.{phrase_rule.name}"
            hits.append(RuleHit(rule=name, points=phrase_rule.points, reason=phrase_rule.reason))
            disqualified_by = disqualified_by or (name if phrase_rule.disqualify else None)
    unreachable = negative.unreachable
    if unreachable.points and profile.unreachable_calls >= unreachable.after_attempts:
        reason = f"{unreachable.reason} ({profile.unreachable_calls} attempts)"
        hits.append(RuleHit(rule="negative.unreachable", points=unreachable.points, reason=reason))
    return hits, disqualified_by


def _without(folded: str, phrases: PhrasesByLanguage | None) -> str:
    """The text with the phrases that only mention a red flag taken out (`PhraseRule.unless`)."""
    pattern = phrase_pattern(derived(phrases, every_phrase)) if phrases else None
    return pattern.sub(" ", folded) if pattern is not None else folded
