"""One decision for one lead: evaluate the profile under the rules, then move the stage as a
sales outcome asks and as the evaluation allows. Pure, no I/O; the handlers, the decay pass,
rescoring and simulation all decide through here."""

from dataclasses import dataclass, field
from datetime import datetime

from services.scoring.lifecycle import Move, automatic, marketing_stage, on_outcome
from services.scoring.model import Evaluation, evaluate
from services.scoring.profile import OutcomeEntry, Profile, lead_context, said_last
from services.scoring.rules import Rules
from shared.events import LeadClassified, Temperature


@dataclass(frozen=True)
class Decision:
    evaluation: Evaluation
    stage: str
    stage_since: datetime
    moves: list[Move] = field(default_factory=list)  # applied and refused, in order

    @property
    def stage_reason(self) -> str | None:
        applied = [m for m in self.moves if m.refused is None]
        return applied[-1].reason if applied else None


def decide(
    stage: str | None,
    since: datetime | None,
    profile: Profile,
    rules: Rules,
    now: datetime,
    outcome: OutcomeEntry | None = None,
) -> Decision:
    """`stage` None: a lead seen for the first time starts where its evaluation puts it."""
    evaluation = evaluate(profile, rules, now)
    moves: list[Move] = []
    if stage is None:
        stage, reason = marketing_stage(evaluation, rules)
        if evaluation.disqualified_by is not None:
            stage, reason = "disqualified", f"rule {evaluation.disqualified_by}"
        moves.append(Move(to=stage, reason=reason))
        since = now
    if outcome is not None and (move := on_outcome(stage, outcome, rules, evaluation, profile)) is not None:
        moves.append(move)
        if move.refused is None:
            stage, since = move.to, now
    if (move := automatic(stage, since, profile, evaluation, rules)) is not None:
        moves.append(move)
        stage, since = move.to, now
    assert since is not None
    return Decision(evaluation=evaluation, stage=stage, stage_since=since, moves=moves)


def classification(
    decision: Decision,
    profile: Profile,
    before: tuple[int | None, Temperature | None, str | None],
    cause: str,
    rules_version: int,
) -> LeadClassified:
    """The lead.classified a decision publishes, beside the standing `before` it."""
    evaluation = decision.evaluation
    return LeadClassified(
        score=evaluation.score,
        temperature=evaluation.temperature,
        stage=decision.stage,
        fit=evaluation.fit,
        engagement=evaluation.engagement,
        intent=evaluation.intent,
        breakdown=evaluation.breakdown,
        bant=evaluation.bant.as_dict(),
        stage_reason=decision.stage_reason if decision.stage != before[2] else None,
        cause=cause,
        rules_version=rules_version,
        lead=lead_context(profile),
        said=said_last(profile),
        previous_score=before[0],
        previous_temperature=before[1],
        previous_stage=before[2],
        history=profile.history or None,
    )
