"""An import's header row read against the lead fields (pure, no I/O): the headers no lead
field takes, where their values went (a custom field, or nowhere), and the field each one
probably meant, so a CRM's `Phone Number` or a typed `emial` is told, not lost in silence."""

import difflib
import re
import unicodedata

from services.ingest.enquiry_dates import enquiry_column
from services.ingest.field_names import field_named
from services.ingest.forms import MAX_CUSTOM, NAME_ALIASES, UTM_PREFIX, custom_keys
from services.ingest.schemas import LEAD_FIELDS

UTM_KEYS = ("source", "medium", "campaign", "term", "content")
FIELDS = LEAD_FIELDS - {"utm", "custom"}  # those two are filled from `utm_*` and unknown columns
KNOWN = FIELDS | set(NAME_ALIASES)
"""The headers a lead field takes as they are (besides `utm_*`)."""
SUGGESTED = sorted(KNOWN | {UTM_PREFIX + key for key in UTM_KEYS})
"""What a header is compared with: the fields, the aliases and the common utm columns."""
CLOSE_ENOUGH = 0.75  # difflib's ratio: `emial`, `frist_name`, `compnay` are; `mobile` is not
_NOT_A_LETTER = re.compile(r"[^0-9a-z]+")
_WORD_BREAK = re.compile(r"[\W_]+")

UnknownHeader = dict[str, str | None]  # header, kept_as, did_you_mean: as the report shows it


def is_known(name: str) -> bool:
    return field_named(name) is not None or name.lower().startswith(UTM_PREFIX)


def unknown_headers(header: list[str]) -> list[UnknownHeader]:
    """Each named header no lead field takes, in the file's order: `kept_as` is the custom
    field its values went to (`custom.<name>`, the header's spaces as `_`: `forms.custom_keys`),
    None when they were not imported (a name no custom field may have, one naming the same
    custom field as a header before it, the honeypot, or a column past the 50 custom fields a
    lead keeps); `did_you_mean`, the field it is closest to, when one is. The column that dates
    the enquiries (`enquiry_dates`) is known."""
    found: list[UnknownHeader] = []
    dated_by = enquiry_column(header)
    header = [name for name in header if name != dated_by]
    keys = custom_keys(header)
    custom = 0
    for name in header:
        if not name or is_known(name):
            continue
        key = keys.get(name) if custom < MAX_CUSTOM else None
        custom += key is not None
        found.append(
            {"header": name, "kept_as": f"custom.{key}" if key else None, "did_you_mean": meant(name)}
        )
    return found


def meant(name: str) -> str | None:
    """The field a header probably names: the same written another way (`Email`, `First
    Name`, `e-mail`), a field named by one of its words (`Phone Number`, `Company Name`, and as
    `field_names` reads a word, `Телефон офиса`), or one a letter or two off (`emial`,
    `frist_name`)."""
    plain = _NOT_A_LETTER.sub("_", name.lower()).strip("_")
    if plain in SUGGESTED:
        return plain
    if word := next((word for word in plain.split("_") if word in FIELDS), None):
        return word
    said = (field_named(word) for word in _WORD_BREAK.split(unicodedata.normalize("NFC", name)) if word)
    if field := next((field for field in said if field in FIELDS), None):
        return field
    close = difflib.get_close_matches(plain, SUGGESTED, n=1, cutoff=CLOSE_ENOUGH)
    return close[0] if close else None
