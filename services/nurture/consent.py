"""Whether a marketing message may go to a lead, by channel. Pure.

A lead may be written to by email, SMS or messenger when they consented (on the form, the
`consent` field; later, `consent.changed`), for that channel or for marketing as a whole, or
when their source states a legal basis for it (the source's `marketing_basis`). A withdrawal
for a channel stops that channel; a withdrawal for marketing stops everything (unsubscribe).
Call tasks go to a rep, who decides; they are not gated here."""

from typing import Any

MARKETING_CHANNELS = frozenset({"email", "sms", "messenger"})
MARKETING_PURPOSES = frozenset({"marketing", "all"})


def may_market(channel: str, context: dict[str, Any]) -> bool:
    if channel not in MARKETING_CHANNELS:
        return True
    by_channel = context.get("consent_channels") or {}
    if channel in by_channel:
        return bool(by_channel[channel])
    return context.get("consent") is True or bool(context.get("marketing_basis"))


HEARD = "consent_heard"
"""Where a lead's context keeps what `consent.changed` said, by channel ("*": marketing as a
whole), apart from the lead as scoring's classification copied it: a classification made before
the change, or arriving before it, must not undo it (`as_heard`)."""


OPTED_IN_AGAIN = "opted_in_again"
"""Kept on a lead's context when the person consented to marketing again (through a `history`
key) before nurture knew their addresses (the consent came before the first classification):
that classification then lifts their addresses' suppression (`suppression`), as the consent
would have, had it come after."""


def with_consent(context: dict[str, Any], change: dict[str, Any]) -> dict[str, Any]:
    """The context after a `consent.changed` (purposes other than marketing change nothing)."""
    if change.get("purpose", "marketing") not in MARKETING_PURPOSES:
        return context
    granted, channel = bool(change.get("granted", True)), change.get("channel")
    heard = {**(context.get(HEARD) or {}), channel or "*": granted}
    return _given(channel, granted, {**context, HEARD: heard})


def as_heard(context: dict[str, Any], heard: dict[str, bool] | None) -> dict[str, Any]:
    """A classification's copy of the lead, with what `consent.changed` said laid over it."""
    for key, granted in (heard or {}).items():
        context = _given(None if key == "*" else key, granted, context)
    return {**context, HEARD: heard} if heard else context


def _given(channel: str | None, granted: bool, context: dict[str, Any]) -> dict[str, Any]:
    if channel:
        return {**context, "consent_channels": {**(context.get("consent_channels") or {}), channel: granted}}
    return {**context, "consent": granted}


def given_everywhere(change: dict[str, Any]) -> bool:
    """A consent given for marketing as a whole: a person who unsubscribed opts in again."""
    purpose = change.get("purpose", "marketing")
    return bool(change.get("granted")) and purpose in MARKETING_PURPOSES and not change.get("channel")


def withdrawn_everywhere(change: dict[str, Any]) -> bool:
    """A withdrawal for marketing as a whole: the person is unsubscribed."""
    purpose = change.get("purpose", "marketing")
    return not change.get("granted", True) and purpose in MARKETING_PURPOSES and not change.get("channel")
