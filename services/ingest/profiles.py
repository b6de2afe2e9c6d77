"""A known person's profile: the attributes a submission changes, and the profile's bounds."""

import json
from typing import Any

from shared.http import InvalidInput

FIRST_TOUCH = frozenset({"utm", "page_url", "referrer"})
# What a submission says rather than who the person is: when and what they want this time.
# A known person's repeat keeps these on its activity whatever the profile takes, so a key
# that may not overwrite the profile still passes on new intent (scoring reads it there).
# Budget is not among them: it scores fit, who the buyer is, as the profile has it.
SAID = frozenset({"timeframe", "message", "need"})
MAX_CUSTOM_FIELDS = 100
MAX_PROFILE_BYTES = 256 * 1024  # as JSON; the events that carry a profile stay well in bounds


def merge_attributes(
    stored: dict[str, Any], incoming: dict[str, Any], overwrite: bool = True
) -> dict[str, Any]:
    """The attributes that change: new or different values (only new ones when not
    `overwrite`), first-touch fields only when missing; for custom fields, the keys that are
    new or different (only new ones when not `overwrite`)."""
    changes: dict[str, Any] = {}
    for key, value in incoming.items():
        if key == "custom":
            known = stored.get("custom", {})
            changed = {k: v for k, v in value.items() if k not in known or (overwrite and known[k] != v)}
            if changed:
                changes["custom"] = changed
            continue
        present = stored.get(key) not in (None, "", [], {})
        if present and (key in FIRST_TOUCH or not overwrite):
            continue
        if stored.get(key) != value:
            changes[key] = value
    return changes


def check_profile(attributes: dict[str, Any]) -> None:
    """Refuse a merged profile over its bounds, naming the field that makes it so."""
    custom = attributes.get("custom", {})
    if len(custom) > MAX_CUSTOM_FIELDS:
        reason = (
            f"would give this person {len(custom)} custom fields; a lead keeps at most {MAX_CUSTOM_FIELDS}"
        )
        raise InvalidInput([("custom", reason)])
    sizes = {k: len(json.dumps(v, ensure_ascii=False).encode()) for k, v in attributes.items()}
    if (total := sum(sizes.values())) > MAX_PROFILE_BYTES:
        largest = max(sizes, key=sizes.__getitem__)
        reason = f"would make this person's profile {total:,} bytes; at most {MAX_PROFILE_BYTES:,}"
        raise InvalidInput([(largest, reason)])


def merged_profile(stored: dict[str, Any], changes: dict[str, Any]) -> dict[str, Any]:
    """The profile with `changes` (of `merge_attributes`) applied."""
    merged = {**stored, **changes}
    if "custom" in changes:
        merged["custom"] = {**stored.get("custom", {}), **changes["custom"]}
    return merged


def within_bounds(stored: dict[str, Any], changes: dict[str, Any]) -> dict[str, Any]:
    """For a submission that may not learn who is known (a web page's, `Submission.vouched`
    False): the changes that keep the profile within its bounds, the new custom fields left out
    when they would not, and everything when even that would not. A 422 told such a page the
    person was known, and how many custom fields their profile held (found by a review)."""
    for kept in (changes, {k: v for k, v in changes.items() if k != "custom"}):
        try:
            check_profile(merged_profile(stored, kept))
        except InvalidInput:
            continue
        return kept
    return {}
