"""What a visitor is told about a form field ingest refused, in their language (pure): the
reasons are written for developers ("not a valid email address: An email address must have
an @-sign."), and a page in Russian or Kazakh showed them in English."""

from services.ingest.capture import REQUIRED_BY_SOURCE
from services.ingest.normalize import CONTACT_REQUIRED
from shared.languages import Language, say

# The fields a form usually has, named in the visitor's words (others keep their name).
LABELLED = frozenset({"email", "phone", "first_name", "last_name", "company", "message", "consent"})


def in_visitors_words(field: str, reason: str, language: Language) -> tuple[str, str]:
    """(the field's label, what to do about it) in `language`. A reason of no known kind
    stays as it is in English, and is "please check this value" in the other languages."""
    label = say(f"form_field_{field}", language) if field in LABELLED else field
    return label, _what_to_do(field, reason, language)


def _what_to_do(field: str, reason: str, language: Language) -> str:
    if reason == CONTACT_REQUIRED:
        return say("form_needs_contact", language)
    if reason == REQUIRED_BY_SOURCE:
        return say("form_required", language)
    if field == "email":  # whatever is wrong with it, the visitor's part is to type it again
        return say("form_bad_email", language)
    if field == "phone":
        return say("form_bad_phone", language)
    return reason if language == "en" else say("form_check_value", language)
