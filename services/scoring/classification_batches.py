"""A batch of classification decisions made in one transaction: each lead's standing decided
now, a history row for each change (and each stage move refused), a `lead.classified` staged in
the outbox for each change, and the standings written back together by `save`."""

import base64
import logging
from contextlib import nullcontext
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from uuid import UUID, uuid4

from pydantic import TypeAdapter
from sqlmodel.ext.asyncio.session import AsyncSession

from services.scoring.backdating import stays_history
from services.scoring.classify import Decision, classification, decide
from services.scoring.profile import OutcomeEntry
from services.scoring.rulebook import ActiveRules
from services.scoring.standings import HISTORY, SCORES, Standing
from shared import topics
from shared.db import EncodedJson, defer_insert, defer_upsert
from shared.events import LEAD_CLASSIFIED, Envelope, RuleHit, Temperature, for_a_rep
from shared.observability import correlated
from shared.outbox import add_to_outbox
from shared.personal import seal_data
from shared.sealing import SecretBox

log = logging.getLogger(__name__)
_HITS = TypeAdapter(list[RuleHit])
_DATA = TypeAdapter(dict[str, Any])  # as `Envelope.data` is encoded
LEAD_KEY = ("lead_id",)


@dataclass
class Batch:
    """Decisions made in one transaction, written together by `save`."""

    active: ActiveRules
    ring_box: SecretBox | None = None  # seals a hot lead's key for its hand-off's ring (shared.personal)
    rows: dict[UUID, tuple[Standing, Decision, datetime]] = field(default_factory=dict)  # the latest per lead
    history: list[dict[str, Any]] = field(default_factory=list)
    changed: int = 0

    def apply(
        self,
        session: AsyncSession,
        standing: Standing,
        now: datetime,
        cause: Envelope | str,
        outcome: OutcomeEntry | None = None,
        retell: bool = False,
    ) -> Decision:
        """Decide the lead's standing now; record and publish what changed. `cause` is the
        input event, or the name of the pass ("decay", "rescore"). `retell`: publish the
        classification even when it stays the same, for details of the person changed that
        those who follow the lead act on (`handlers.RETOLD_DETAILS`)."""
        if isinstance(cause, Envelope):  # a pass of time keeps what the lead's inputs made it
            standing.profile.history = stays_history(cause, standing.profile.history, self.active.value)
        decision = decide(
            standing.stage, standing.stage_since, standing.profile, self.active.value, now, outcome
        )
        evaluation = decision.evaluation
        before = standing.key
        after = (evaluation.score, evaluation.temperature, decision.stage)
        cause_name = cause.type if isinstance(cause, Envelope) else cause
        correlation = cause.correlation_id if isinstance(cause, Envelope) else None
        previous = {
            "previous_score": before[0],
            "previous_temperature": before[1],
            "previous_stage": before[2],
        }
        self._note_refusals(standing, decision, now, cause_name, correlation, after, previous)
        if after != before:
            self.changed += 1
            self._history(standing, now, cause_name, correlation, after, previous, decision.stage_reason)
        if after != before or retell:
            self._publish(session, standing, decision, cause, before)
        standing.score, standing.temperature, standing.stage = after
        standing.stage_since = decision.stage_since
        self.rows[standing.lead_id] = (standing, decision, now)
        return decision

    def _note_refusals(
        self,
        standing: Standing,
        decision: Decision,
        now: datetime,
        cause: str,
        correlation: UUID | None,
        after: tuple[int, str, str],
        previous: dict[str, Any],
    ) -> None:
        """A line in the lead's history (and a warning) for each stage move refused."""
        for move in decision.moves:
            if move.refused is not None:
                note = f"refused: {move.refused} ({move.reason})"
                # The log says what was refused, not why: the reason may be what sales wrote
                # about the person (an outcome's reason), kept only in the lead's history.
                with correlated(correlation) if correlation else nullcontext():
                    log.warning("lead %s: stage move refused: %s", standing.lead_id, move.refused)
                self._history(standing, now, cause, correlation, after, previous, note)

    def _publish(
        self,
        session: AsyncSession,
        standing: Standing,
        decision: Decision,
        cause: Envelope | str,
        before: tuple[int | None, Temperature | None, str | None],
    ) -> None:
        """Stage lead.classified in the outbox, sealed with the lead's key; one for a rep rings
        the hot-leads bell, with that key sealed for the hand-off."""
        cause_name = cause.type if isinstance(cause, Envelope) else cause
        payload = classification(decision, standing.profile, before, cause_name, self.active.version)
        event = _classified(standing.lead_id, cause)
        seal_key = standing.profile.seal_key
        if seal_key is None:
            data = Envelope.encoded_data(payload)
        else:
            opened = payload.model_dump(mode="json", exclude_none=True)
            data = _DATA.dump_json(seal_data(LEAD_CLASSIFIED, opened, base64.b64decode(seal_key)))
        bell = ring_with = None
        if for_a_rep(payload.temperature, payload.stage, payload.history):
            bell = topics.HOT_LEADS_BELL
            if seal_key is not None and self.ring_box is not None:
                ring_with = self.ring_box.seal(seal_key)
        value = event.to_bytes_with(data)
        add_to_outbox(session, topics.LEAD_CLASSIFICATIONS, event, bell, ring_with or "", encoded=value)

    def _history(
        self,
        standing: Standing,
        now: datetime,
        cause: str,
        correlation: UUID | None,
        after: tuple[int, str, str],
        previous: dict[str, Any],
        note: str | None,
    ) -> None:
        score, temperature, stage = after
        row = {
            "lead_id": standing.lead_id,
            "at": now,
            "cause": cause,
            "correlation_id": correlation,
            "score": score,
            "temperature": temperature,
            "stage": stage,
            "rules_version": self.active.version,
            "note": note,
            **previous,
        }
        self.history.append(row)

    def save(self, session: AsyncSession) -> None:
        """Queue the history and the standings, written with the outbox's rows as the
        transaction commits, in one statement (`shared.db.write_deferred`)."""
        for row in self.history:
            defer_insert(session, HISTORY, row)
        self.history = []
        for lead in sorted(self.rows):  # in lead order (see `standings.load`)
            defer_upsert(session, SCORES, LEAD_KEY, self._row(*self.rows[lead]))
        self.rows = {}

    def _row(self, standing: Standing, decision: Decision, now: datetime) -> dict[str, Any]:
        evaluation = decision.evaluation
        return {
            "lead_id": standing.lead_id,
            "score": evaluation.score,
            "fit": evaluation.fit,
            "engagement": evaluation.engagement,
            "intent": evaluation.intent,
            "temperature": evaluation.temperature,
            "stage": decision.stage,
            "stage_since": decision.stage_since,
            "breakdown": EncodedJson(_HITS.dump_json(evaluation.breakdown).decode()),
            "bant": evaluation.bant.as_dict(),
            "rules_version": self.active.version,
            "profile": EncodedJson(standing.profile.model_dump_json(exclude_defaults=True)),
            "review_at": evaluation.review_at,
            "updated_at": now,
        }


def _classified(lead_id: UUID, cause: Envelope | str) -> Envelope:
    """The lead.classified event, its payload to go in encoded (a third of publishing went to
    the payload's trip through a dict, the envelope's validation of it and its encoding)."""
    if isinstance(cause, Envelope):
        return cause.follow_up(LEAD_CLASSIFIED, "scoring", None)
    return Envelope.of(LEAD_CLASSIFIED, lead_id, uuid4(), "scoring", None)
