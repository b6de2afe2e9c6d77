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


def with_consent(context: dict[str, Any], change: dict[str, Any]) -> dict[str, Any]:
    """The context after a `consent.changed` (purposes other than marketing change nothing)."""
    if change.get("purpose", "marketing") not in MARKETING_PURPOSES:
        return context
    granted, channel = bool(change.get("granted", True)), change.get("channel")
    if channel:
        return {**context, "consent_channels": {**(context.get("consent_channels") or {}), channel: granted}}
    return {**context, "consent": granted}


def withdrawn_everywhere(change: dict[str, Any]) -> bool:
    """A withdrawal for marketing as a whole: the person is unsubscribed."""
    purpose = change.get("purpose", "marketing")
    return not change.get("granted", True) and purpose in MARKETING_PURPOSES and not change.get("channel")
