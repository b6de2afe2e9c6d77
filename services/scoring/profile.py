"""A lead's profile as scoring sees it: attributes merged as they arrive, activity history
aggregated and bounded, sales outcomes. Built by folding events in; pure, no I/O.

Events may come for a lead scoring has not seen (an activity before its capture): they
start a profile of their own and the capture merges in when it arrives.
"""

import base64
from datetime import datetime
from typing import Any

from pydantic import BaseModel, Field

from shared.events import (
    ACTIVITY_RECORDED,
    CONSENT_CHANGED,
    LEAD_CAPTURED,
    LEAD_UPDATED,
    OUTCOME_RECORDED,
    Envelope,
    Said,
)

RECENT_PER_TYPE = 50  # timestamps kept per activity type (older ones barely count after decay)
OUTCOMES_KEPT = 50
NOTES_KEPT = 10
CONTACT_FIELDS = ("email", "phone")
# A known person's repeat capture: its activity carries what they said this time (timeframe,
# message, need), which a key that may not overwrite their profile cannot put there.
SUBMISSIONS = frozenset({"form_submitted", "imported"})
# A rep's call nobody answered is the rep's doing, not the person's: kept under a type of its
# own, which the rules give no points and no say in the lead's interest (the unanswered calls
# still count towards `negative.unreachable`).
UNANSWERED_CALL = "call_unanswered"
NOT_REACHED = frozenset({"unreachable", "no_answer", "busy", "voicemail"})
STATED = ("timeframe", "message", "need")  # what a statement of the person's says
_NOT_ATTRIBUTES = {"source_id", "captured_at", "online", "channel"}


class ActivityLog(BaseModel):
    count: int = 0
    recent: list[datetime] = Field(default_factory=list)  # newest last, at most RECENT_PER_TYPE


class OutcomeEntry(BaseModel):
    outcome: str
    at: datetime
    amount: float | None = None
    reason: str | None = None


class ChatLine(BaseModel):
    at: datetime
    text: str


class Profile(BaseModel):
    attributes: dict[str, Any] = Field(default_factory=dict)
    channel: str | None = None
    captured: bool = False
    captured_at: datetime | None = None
    timeframe_at: datetime | None = None  # when the current timeframe was stated
    said_at: datetime | None = None  # when the current message or need was written
    activities: dict[str, ActivityLog] = Field(default_factory=dict)
    notes: list[str] = Field(default_factory=list)  # texts red flags are looked for in
    chat: list[ChatLine] = Field(default_factory=list)  # what the person wrote since, latest last
    # The timeframe a later submission stated, the profile's own left as it was (`timeframe`).
    timeframe_said: ChatLine | None = None
    said_again: Said | None = None  # the latest submission that said any of `STATED`, as it said it
    unreachable_calls: int = 0
    outcomes: list[OutcomeEntry] = Field(default_factory=list)
    unsubscribed: bool = False
    # The lead's classifications are history (`backdating.stays_history`) until new interest.
    history: bool = False
    # The lead's key (base64) its events were sealed with: what scoring says about the person
    # is sealed with it too. Kept as long as the profile; erasure deletes both.
    seal_key: str | None = None

    def activity_times(self, activity: str) -> list[datetime]:
        log = self.activities.get(activity)
        return log.recent if log else []

    def last_activity(self, activity: str) -> datetime | None:
        log = self.activities.get(activity)
        return log.recent[-1] if log is not None and log.recent else None

    def timeframe(self) -> tuple[Any, datetime | None]:
        """The timeframe the person stated last, and when: the profile's, or a later
        submission's."""
        said, own = self.timeframe_said, self.attributes.get("timeframe")
        if said is not None and (own is None or self.timeframe_at is None or said.at >= self.timeframe_at):
            return said.text, said.at
        return own, self.timeframe_at

    def texts(self) -> list[str]:
        """Free text the person or a rep wrote: where phrases (red flags, no authority) show."""
        fields = [self.attributes.get(k) for k in ("message", "need")]
        reasons = [o.reason for o in self.outcomes]
        return [t for t in (*fields, *self.notes, *reasons) if isinstance(t, str) and t]


def fold(updated: Profile, event: Envelope) -> None:
    """Apply one more event to the profile (in place)."""
    data = event.data
    if event.sealed_with is not None:
        updated.seal_key = base64.b64encode(event.sealed_with).decode()
    if event.type == LEAD_CAPTURED:
        # What the person said, they said when they enquired: an import's row is dated so.
        said_at = _when(data.get("captured_at"), event.occurred_at)
        _merge(updated, {k: v for k, v in data.items() if k not in _NOT_ATTRIBUTES}, said_at)
        updated.channel = data.get("channel") or updated.channel
        updated.captured = True
        updated.captured_at = updated.captured_at or said_at
    elif event.type == LEAD_UPDATED:
        _merge(updated, data.get("changes", {}), _when(data.get("occurred_at"), event.occurred_at))
    elif event.type == ACTIVITY_RECORDED:
        _record_activity(updated, data, _when(data.get("occurred_at"), event.occurred_at))
    elif (entry := outcome_of(event)) is not None:
        updated.outcomes = sorted([*updated.outcomes, entry], key=lambda o: o.at)[-OUTCOMES_KEPT:]
    elif event.type == CONSENT_CHANGED:
        _consent(updated, data)


def _consent(updated: Profile, change: dict[str, Any]) -> None:
    """A consent for marketing (as a whole, or one channel) given or withdrawn: kept on the
    attributes, so `lead.classified` tells nurture; withdrawn as a whole, unsubscribed."""
    if change.get("purpose", "marketing") not in ("marketing", "all"):
        return
    granted, channel = bool(change.get("granted", True)), change.get("channel")
    if channel:
        channels = {**(updated.attributes.get("consent_channels") or {}), channel: granted}
        updated.attributes = {**updated.attributes, "consent_channels": channels}
        return
    updated.attributes = {**updated.attributes, "consent": granted}
    updated.unsubscribed = not granted


def outcome_of(event: Envelope) -> OutcomeEntry | None:
    """The sales outcome an `outcome.recorded` event reports (None for other events)."""
    if event.type != OUTCOME_RECORDED:
        return None
    data = event.data
    return OutcomeEntry(
        outcome=data["outcome"],
        at=_when(data.get("occurred_at"), event.occurred_at),
        amount=data.get("amount"),
        reason=data.get("reason"),
    )


def _merge(profile: Profile, fields: dict[str, Any], at: datetime) -> None:
    fields = {k: v for k, v in fields.items() if v is not None and v != "" and v != {}}
    if "timeframe" in fields and fields["timeframe"] != profile.attributes.get("timeframe"):
        profile.timeframe_at = at
    if any(k in fields and fields[k] != profile.attributes.get(k) for k in ("message", "need")):
        profile.said_at = at
    for contact in CONTACT_FIELDS:  # contact points are filled, never overwritten (as in ingest)
        if profile.attributes.get(contact):
            fields.pop(contact, None)
    if isinstance(fields.get("custom"), dict):  # `lead.updated` carries the custom keys that changed
        fields["custom"] = {**profile.attributes.get("custom", {}), **fields["custom"]}
    profile.attributes = {**profile.attributes, **fields}


def _record_activity(profile: Profile, data: dict[str, Any], at: datetime) -> None:
    kind = str(data.get("activity_type", "unknown"))
    properties = data.get("properties") or {}
    if kind == "call_logged" and str(properties.get("result", "")).lower() in NOT_REACHED:
        kind = UNANSWERED_CALL
        profile.unreachable_calls += 1
    log = profile.activities.setdefault(kind, ActivityLog())
    log.count += 1
    log.recent = sorted([*log.recent, at])[-RECENT_PER_TYPE:]
    text = properties.get("text") or properties.get("note")
    if isinstance(text, str) and text:
        _wrote(profile, text, at, own_words=kind == "chat_message")
    if kind in SUBMISSIONS:
        _said_again(profile, properties, at)


def _wrote(profile: Profile, text: str, at: datetime, own_words: bool) -> None:
    """Text written on the lead, where red flags show; the person's own words (a chat, a
    repeat submission): an ask in them counts as well (scoring.temperature)."""
    profile.notes = [*profile.notes, text[:500]][-NOTES_KEPT:]
    if own_words:
        profile.chat = sorted([*profile.chat, ChatLine(at=at, text=text[:500])], key=lambda c: c.at)[
            -NOTES_KEPT:
        ]


def _said_again(profile: Profile, properties: dict[str, Any], at: datetime) -> None:
    """What a repeat submission said, kept as said then: its words as a chat's, its timeframe
    when it is the latest one stated, and the whole of it when it is the latest submission."""
    stated = {key: text[:500] for key in STATED if (text := _stated(properties.get(key))) is not None}
    for key in ("message", "need"):
        if key in stated:
            _wrote(profile, stated[key], at, own_words=True)
    latest = profile.said_again
    if stated and (latest is None or latest.at is None or at >= latest.at):
        profile.said_again = Said(**stated, at=at)
    if "timeframe" in stated and (profile.timeframe_said is None or at >= profile.timeframe_said.at):
        profile.timeframe_said = ChatLine(at=at, text=stated["timeframe"])


def _stated(value: Any) -> str | None:
    """A value the person gave (a text, or a timeframe as a number of days), as text."""
    if not isinstance(value, str | int) or isinstance(value, bool) or not str(value).strip():
        return None
    return str(value)


def _when(value: Any, default: datetime) -> datetime:
    if isinstance(value, datetime):
        return value
    if isinstance(value, str):
        try:
            return datetime.fromisoformat(value)
        except ValueError:
            return default
    return default


def lead_context(profile: Profile) -> dict[str, Any]:
    """What `lead.classified` carries about the person (nurture hands it to the rep)."""
    return {**profile.attributes, **({"channel": profile.channel} if profile.channel else {})}


def said_last(profile: Profile) -> Said | None:
    """What the person said most recently, for the rep calling them: the profile's own words,
    a later submission's (`said_again`) or the last line they wrote in a chat (bounded as a
    submission's message), whichever is newest; None if they said nothing."""
    said = _said_in_submissions(profile)
    line = profile.chat[-1] if profile.chat else None
    if line is not None and (said is None or said.at is None or line.at > said.at):
        return Said(message=line.text, at=line.at)
    return said


def _said_in_submissions(profile: Profile) -> Said | None:
    """The profile's own words, or a later submission's, whichever is newer."""
    own = {key: text for key in STATED if (text := _stated(profile.attributes.get(key))) is not None}
    own_at = max((t for t in (profile.timeframe_at, profile.said_at) if t is not None), default=None)
    again = profile.said_again
    if again is not None and (not own or own_at is None or again.at is None or again.at >= own_at):
        return again
    return Said(**own, at=own_at) if own else None
