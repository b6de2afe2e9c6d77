"""Personal data travels sealed: what an event says about a person is encrypted with a key of
that lead's own, kept by ingest beside the lead. Erasing the lead deletes the key, so every
copy of its events (on the broker until retention ends, in journals, archives, dead letters,
backups) is unreadable from then on.

Each event type names the part it seals and the fields left in the clear, which are the
ones metrics counts by (channel, source, campaign, UTM...). Everything else in that part,
custom fields included, goes in one Fernet token (AES-128-CBC and HMAC-SHA256) under
`sealed`; a classification also seals its explanation (it quotes the person's own words)
and what the person said last (`said`) under the payload's own `sealed`. A consumer that
needs the person asks ingest for the key (`shared.lead_keys`); one that counts does not."""

import base64
import json
import os
from typing import Any

from cryptography.fernet import Fernet, InvalidToken

from shared.events import (
    ACTIVITY_RECORDED,
    LEAD_CAPTURED,
    LEAD_CLASSIFIED,
    LEAD_UPDATED,
    OUTCOME_RECORDED,
    Envelope,
    OpenedEnvelope,
)

SEALED = "sealed"
KEY_BYTES = 32
# What a lead's description keeps in the clear: how it came (for the funnel, CAC and
# campaign reports) and the consent that says whether it may be written to.
CLEAR_LEAD_FIELDS = frozenset(
    {
        "source_id",
        "source_name",  # the name an admin gave the source: nothing of the person
        "channel",
        "online",
        "captured_at",
        "utm",
        "campaign",
        "marketing_basis",
        "source_language",
        "consent",
    }
)
CLEAR_OUTCOME_FIELDS = frozenset({"outcome_id", "outcome", "occurred_at", "amount", "currency", "rep_id"})
# event type -> (the part sealed: None for the payload itself, or the name of a field in it,
# the fields of that part left in the clear)
PLACES: dict[str, tuple[str | None, frozenset[str]]] = {
    LEAD_CAPTURED: (None, CLEAR_LEAD_FIELDS),
    LEAD_UPDATED: ("changes", CLEAR_LEAD_FIELDS),
    ACTIVITY_RECORDED: ("properties", frozenset()),
    OUTCOME_RECORDED: (None, CLEAR_OUTCOME_FIELDS),
    LEAD_CLASSIFIED: ("lead", CLEAR_LEAD_FIELDS),
}
# event type -> fields of the payload itself sealed beside its part: a classification's
# explanation quotes what the person wrote (a timeframe nobody understood, whole; the words of
# an ask; their email's domain), and `said` is their latest words, so both are theirs as much
# as the lead it describes.
PAYLOAD_FIELDS_SEALED: dict[str, frozenset[str]] = {
    LEAD_CLASSIFIED: frozenset({"breakdown", "stage_reason", "said"}),
}


def new_key() -> bytes:
    return os.urandom(KEY_BYTES)


def _fernet(key: bytes) -> Fernet:
    return Fernet(base64.urlsafe_b64encode(key))


def seal(values: dict[str, Any], key: bytes, clear: frozenset[str]) -> dict[str, Any]:
    """`values` with every field not in `clear` moved into one token under `sealed`."""
    hidden = {k: v for k, v in values.items() if k not in clear}
    if not hidden:
        return dict(values)
    token = _fernet(key).encrypt(json.dumps(hidden, separators=(",", ":")).encode()).decode()
    return {**{k: v for k, v in values.items() if k in clear}, SEALED: token}


def unseal(values: dict[str, Any], key: bytes) -> dict[str, Any]:
    """`values` with its sealed fields back in place (as it is when nothing is sealed)."""
    if SEALED not in values:
        return values
    try:
        hidden = json.loads(_fernet(key).decrypt(str(values[SEALED]).encode()))
    except InvalidToken as error:
        raise ValueError("a sealed part does not open with its lead's key") from error
    return {**{k: v for k, v in values.items() if k != SEALED}, **hidden}


def seal_data(type: str, data: dict[str, Any], key: bytes) -> dict[str, Any]:
    """An event payload with the personal part of its type sealed (unchanged for other types)."""
    if type not in PLACES:
        return data
    part, clear = PLACES[type]
    if part is None:
        return seal(data, key, clear)
    sealed = {**data, part: seal(data[part], key, clear)} if data.get(part) else data
    hidden = PAYLOAD_FIELDS_SEALED.get(type, frozenset())
    return seal(sealed, key, frozenset(sealed) - hidden) if hidden & sealed.keys() else sealed


def is_sealed(event: Envelope) -> bool:
    part = _part_of(event.type)
    return SEALED in event.data or (part is not None and SEALED in (event.data.get(part) or {}))


def _part_of(type: str) -> str | None:
    """The field its type seals beside the payload itself (`PLACES`): only there, and in the
    payload, is a `sealed` key a token. Elsewhere it may be what a person sent (a form's
    `utm_sealed` is `utm: {"sealed": …}`, left in the clear)."""
    return PLACES.get(type, (None, frozenset()))[0]


def opened(event: Envelope, key: bytes) -> Envelope:
    """A copy of the event with its sealed parts open; it remembers the key (`sealed_with`)
    so what a consumer publishes about the lead can be sealed the same way."""
    data = unseal(event.data, key)
    if (part := _part_of(event.type)) is not None and isinstance(data.get(part), dict):
        data = {**data, part: unseal(data[part], key)}
    fields = {name: getattr(event, name) for name in Envelope.model_fields}
    return OpenedEnvelope.model_construct(**{**fields, "data": data, "opened_with": key})
