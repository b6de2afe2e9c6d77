"""Contact points a person wrote in a chat message ("Mənə zəng edin: +994 50 555 44 33"): the
first valid phone number and the first valid email address in their words. Pure, no I/O."""

import re
from dataclasses import dataclass

import phonenumbers

from services.ingest.normalize import normalize_email, read_phone
from shared.http import InvalidInput

# Something@domain.tld as people type it in a message; normalize_email then checks it in full.
_EMAIL = re.compile(r"[\w.!#$%&'*+/=?^`{|}~-]+@[\w-]+(?:\.[\w-]+)+")


@dataclass(frozen=True)
class WrittenContact:
    email: str | None
    phone: str | None  # E.164, with " ext. N" when the person wrote an extension


def contact_written_in(words: str | None, region: str) -> WrittenContact | None:
    """The first phone number (read in `region` when written without a country code) and the
    first email address in `words`, or None when they hold neither."""
    if not words:
        return None
    email, phone = _first_email(words), _first_phone(words, region)
    return WrittenContact(email, phone) if email or phone else None


def _first_phone(words: str, region: str) -> str | None:
    for match in phonenumbers.PhoneNumberMatcher(words, region):  # valid numbers only
        try:
            number, extension = read_phone(match.raw_string, region)
        except InvalidInput:
            continue
        return f"{number} ext. {extension}" if extension else number
    return None


def _first_email(words: str) -> str | None:
    for match in _EMAIL.finditer(words):
        try:
            return normalize_email(match.group())
        except InvalidInput:
            continue
    return None
