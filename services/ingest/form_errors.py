"""What a visitor is told about a form field ingest refused, in their language (pure): the
reasons are written for developers ("not a valid email address: An email address must have
an @-sign."), and a page in Russian or Kazakh showed them in English."""

from shared.languages import Language, say

# The fields a form usually has, named in the visitor's words (others keep their name).
LABELLED = frozenset({"email", "phone", "first_name", "last_name", "company", "message", "consent"})
# The text telling the visitor what to do, by the error's type, else by its field: whatever is
# wrong with an email (too long, say), the visitor's part is to type it again.
BY_TYPE = {
    "contact_missing": "form_needs_contact",
    "required_by_source": "form_required",
    "email_invalid": "form_bad_email",
    "phone_invalid": "form_bad_phone",
}
BY_FIELD = {"email": "form_bad_email", "phone": "form_bad_phone"}


def in_visitors_words(field: str, reason: str, kind: str, language: Language) -> tuple[str, str]:
    """(the field's label, what to do about it) in `language`, for an error of type `kind`. A
    reason of no known kind stays as it is in English, and is "please check this value" in the
    other languages."""
    label = say(f"form_field_{field}", language) if field in LABELLED else field
    text = BY_TYPE.get(kind) or BY_FIELD.get(field)
    if text is not None:
        return label, say(text, language)
    return label, reason if language == "en" else say("form_check_value", language)
