"""Plain HTML forms: turning posted fields into a lead (pure, no I/O)."""

import contextlib
from collections.abc import Iterable
from typing import Any

from services.ingest.capture import parse_lead
from services.ingest.field_names import FIO, WHOLE_NAME, field_named
from services.ingest.normalize import custom_key, normalize_email, normalize_phone
from services.ingest.person_names import capitalized, split_fio, split_name
from services.ingest.schemas import LeadIn
from shared.http import InvalidInput

HONEYPOT = "_hp"
NAME_ALIASES = (WHOLE_NAME, "full_name")  # a whole name, split into first and last
WHOLE_NAMES = (WHOLE_NAME, FIO)  # as `field_named` calls them: first name first, and surname first
UTM_PREFIX = "utm_"
ADDRESSES = frozenset({"page_url", "referrer"})
MAX_URL, MAX_TAG = 2000, 200  # as LeadIn takes them (schemas.Url, Short)
MAX_CUSTOM = 50


def is_spam(fields: dict[str, str]) -> bool:
    """A bot filled the field people never see."""
    return bool(fields.get(HONEYPOT, "").strip())


def custom_keys(names: Iterable[str]) -> dict[str, str]:
    """The custom field each of these names would fill (`normalize.custom_key`), for the names
    that may fill one: the first of those naming the same field ("Дата обращения", then
    "Дата_обращения": the first only, not the second's values over the first's)."""
    owners: dict[str, str] = {}
    for name in names:
        if name != HONEYPOT and (key := custom_key(name)) is not None:
            owners.setdefault(key, name)
    return {name: key for key, name in owners.items()}


PERSON_NAMES = frozenset({*WHOLE_NAMES, "first_name", "last_name"})


def lead_from_form(fields: Iterable[tuple[str, str]], page_url: str | None) -> LeadIn:
    """Known lead fields by name, as people and website builders name them (`field_names`:
    "Email", "your-tel", "Телефон"); `utm_*` into utm; a whole name split into first and last
    name (`person_names`: "name" first name first, "ФИО" surname first); anything else into
    custom by its name (`custom_keys`: "Дата обращения" as `Дата_обращения`; bounded). Empty
    fields count as absent. A yes-or-no field is read as the JSON route reads it (on/off,
    true/false, 1/0, yes/no; any other is refused)."""
    fields = list(fields)
    keys = custom_keys(name for name, _ in fields)
    lead: dict[str, Any] = {"utm": {}, "custom": {}}
    for name, raw in fields:
        value = raw.strip()
        if not value or name == HONEYPOT:
            continue
        field = field_named(name)
        if field in PERSON_NAMES:  # a person types it: "иванова анна" is Иванова Анна
            value = capitalized(value)
        if field in WHOLE_NAMES and "first_name" not in lead:
            first, last = split_fio(value) if field == FIO else split_name(value)
            lead["first_name"] = first
            if last:
                lead["last_name"] = last
        elif name.lower().startswith(UTM_PREFIX):
            lead["utm"][name.lower()[len(UTM_PREFIX) :]] = value[:MAX_TAG]
        elif field in ADDRESSES:  # what the page's script sent, not the visitor: a 422 lost the lead
            lead[field] = value[:MAX_URL]
        elif field is not None and field not in WHOLE_NAMES:
            lead[field] = value
        elif (key := keys.get(name)) and (key in lead["custom"] or len(lead["custom"]) < MAX_CUSTOM):
            lead["custom"][key] = value[:1000]
    if page_url and "page_url" not in lead:
        lead["page_url"] = page_url[:MAX_URL]
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
