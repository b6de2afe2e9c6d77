"""Plain HTML forms: turning posted fields into a lead (pure, no I/O)."""

import contextlib
import re
from collections.abc import Iterable
from typing import Any

from services.ingest.capture import parse_lead
from services.ingest.field_names import WHOLE_NAME, field_named
from services.ingest.normalize import normalize_email, normalize_phone
from services.ingest.schemas import LeadIn
from shared.http import InvalidInput

HONEYPOT = "_hp"
NAME_ALIASES = (WHOLE_NAME, "full_name")  # a whole name, split into first and last
UTM_PREFIX = "utm_"
CUSTOM_KEY = re.compile(r"^[A-Za-z0-9_.\-]{1,64}$")
MAX_CUSTOM = 50


def is_spam(fields: dict[str, str]) -> bool:
    """A bot filled the field people never see."""
    return bool(fields.get(HONEYPOT, "").strip())


def lead_from_form(fields: Iterable[tuple[str, str]], page_url: str | None) -> LeadIn:
    """Known lead fields by name, as people and website builders name them (`field_names`:
    "Email", "your-tel", "Телефон"); `utm_*` into utm; `name` split into first and last name;
    anything else into custom (bounded). Empty fields count as absent. A yes-or-no field is
    read as the JSON route reads it (on/off, true/false, 1/0, yes/no; any other is refused)."""
    lead: dict[str, Any] = {"utm": {}, "custom": {}}
    for name, raw in fields:
        value = raw.strip()
        if not value or name == HONEYPOT:
            continue
        field = field_named(name)
        if field in NAME_ALIASES and "first_name" not in lead:
            first, _, last = value.partition(" ")
            lead["first_name"] = first
            if last.strip():
                lead["last_name"] = last.strip()
        elif name.lower().startswith(UTM_PREFIX):
            lead["utm"][name.lower()[len(UTM_PREFIX) :]] = value
        elif field is not None and field not in NAME_ALIASES:
            lead[field] = value
        elif CUSTOM_KEY.match(name) and len(lead["custom"]) < MAX_CUSTOM:
            lead["custom"][name] = value[:1000]
    if page_url and "page_url" not in lead:
        lead["page_url"] = page_url[:2000]
    return parse_lead(lead)


def spam_contact(fields: dict[str, str], region: str) -> tuple[str | None, str | None]:
    """The email and phone of a honeypot-caught post, normalised as a lead's are where they
    can be (an erasure finds the post by them, however the person typed them)."""
    email = phone = None
    named = {field_named(name): value for name, value in fields.items() if value}
    with contextlib.suppress(InvalidInput):
        email = normalize_email(named["email"]) if named.get("email") else None
    with contextlib.suppress(InvalidInput):
        phone = normalize_phone(named["phone"], region) if named.get("phone") else None
    return email, phone
