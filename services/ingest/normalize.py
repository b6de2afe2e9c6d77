"""Pure normalisation of what people type: emails, phones, UTM tags, custom fields, birthdays.
Each function raises InvalidInput naming the field, so every channel answers alike."""

import re
import unicodedata
from datetime import date, timedelta
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import phonenumbers
from email_validator import EmailNotValidError, validate_email

from shared.http import Fault, InvalidInput
from shared.inputs import unstorable

UTM_KEYS = ("source", "medium", "campaign", "term", "content")
# Explicit direction controls (embeddings, overrides, isolates). A name holding one reorders the
# rest of the line a rep reads, "\u202eNurlan (Qazaq Tea), +77015551234": the company and the
# phone shown backwards, a wrong number called. No name or message needs them to be read.
_DIRECTION_CONTROLS = re.compile("[\u202a-\u202e\u2066-\u2069]")
# Invisible at either end: spaces, zero-width characters, direction marks, a byte order mark.
_INVISIBLE_ENDS = re.compile("^[\\s\u200b-\u200f\u2060\ufeff]+|[\\s\u200b-\u200f\u2060\ufeff]+$")


def plain_text(value: Any) -> Any:
    """A person's words as they read them: without direction controls, and without anything
    invisible at either end (a right-to-left mark a phone's keyboard put before a name). Inner
    zero-width joiners and non-joiners stay: Persian script and emoji need them."""
    if not isinstance(value, str):
        return value
    value = value.strip()  # every blank str.isspace knows, U+001C-U+001F too, as the fields' check
    if value.isascii():
        return value
    return _INVISIBLE_ENDS.sub("", _DIRECTION_CONTROLS.sub("", value))


def normalize_email(raw: str, field: str = "email") -> str:
    """Syntax-checked, IDNA-normalised and lower-cased (mail systems treat addresses
    case-insensitively in practice, and people type them in any case)."""
    try:
        checked = validate_email(raw.strip(), check_deliverability=False)
    except EmailNotValidError as error:
        raise InvalidInput([(field, f"not a valid email address: {error}", "email_invalid")]) from error
    return checked.normalized.lower()


# An office line's extension at the end, as people write it: Russian доб(авочный), вн(утр,
# внутренний), Kazakh ішкі, Azerbaijani əlavə or daxili, English ext(ension), x or #; a dot or
# not, any letter case, after a comma or a space or neither, then 1-6 digits. phonenumbers
# knows доб, ext, x and # but refuses the others (`daxili` it even reads as letters on a keypad).
_EXTENSION = re.compile(
    r"[\s,]*(?<![^\W\d_])(?:доб(?:авочный)?|вн(?:утр(?:енний)?)?|ішкі|əlavə|daxili|ext(?:ension)?|x|#)"
    r"\.?\s*(?P<digits>\d{1,6})$",
    re.IGNORECASE,
)


def read_phone(raw: str, region: str, field: str = "phone") -> tuple[str, str | None]:
    """E.164 and the extension (digits, or None); numbers written without a country code are
    read in `region` (e.g. KZ, AZ). The extension is for the rep who calls: the number stays the
    person's identity and what SMS and messengers are sent to."""
    text = raw.strip()
    written = _EXTENSION.search(text)
    try:
        number = phonenumbers.parse(text[: written.start()] if written else text, region)
    except phonenumbers.NumberParseException as error:
        raise InvalidInput([(field, f"not a phone number: {error}", "phone_invalid")]) from error
    if not phonenumbers.is_valid_number(number):
        raise InvalidInput([(field, "not a valid phone number", "phone_invalid")])
    extension = written["digits"] if written else number.extension or None
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164), extension


def normalize_phone(raw: str, region: str, field: str = "phone") -> str:
    """E.164, without any extension (`read_phone`)."""
    return read_phone(raw, region, field)[0]


# The one country each of these languages is spoken in: a source in it reads its visitors' local
# numbers there (`050 123 45 67` on an Azerbaijani site is Baku's, not a Kazakh one refused).
# Russian and English are many countries' languages, so they leave the setting's region.
LANGUAGE_REGIONS = {"az": "AZ", "kk": "KZ"}


def phone_region(source_region: str | None, source_language: str | None, default_region: str) -> str:
    """The region a source's numbers written without a country code are read in: its own
    `default_region`, else its `default_language`'s country where that is one, else `default_region`
    (LEADFLOW_DEFAULT_PHONE_REGION)."""
    return source_region or LANGUAGE_REGIONS.get(source_language or "") or default_region


def normalize_contact(
    email: str | None, phone: str | None, region: str
) -> tuple[str | None, str | None, str | None]:
    """Both contact points normalised, and the phone's extension; at least one contact point is
    required. InvalidInput names every field at fault."""
    errors: list[Fault] = []
    extension = None
    if not email and not phone:
        errors.append(("email", "email or phone is required", "contact_missing"))
    try:
        email = normalize_email(email) if email else None
    except InvalidInput as error:
        errors += error.typed
    try:
        phone, extension = read_phone(phone, region) if phone else (None, None)
    except InvalidInput as error:
        errors += error.typed
    if errors:
        raise InvalidInput(errors)
    return email, phone, extension


def utm_from_url(url: str | None) -> dict[str, str]:
    """`utm_*` parameters of a page URL or referrer, without the prefix. A tag whose decoded
    value cannot be stored (`%00`: a NUL) is left out: the URL is what a visitor was sent, not
    what they wrote, and their lead is kept."""
    if not url:
        return {}
    try:
        query = urlsplit(url).query
    except ValueError:
        return {}
    found: dict[str, str] = {}
    for name, value in parse_qsl(query):
        key = name.lower().removeprefix("utm_")
        value = value.strip()[:200]
        if name.lower().startswith("utm_") and key in UTM_KEYS and value and unstorable(value) is None:
            found.setdefault(key, value)
    return found


def collect_utm(explicit: dict[str, str], page_url: str | None, referrer: str | None) -> dict[str, str]:
    """Explicit tags win, then the page URL's, then the referrer's. Keys lose any `utm_` prefix."""
    tags = {key.lower().removeprefix("utm_"): value for key, value in explicit.items() if value}
    for url in (page_url, referrer):
        for key, value in utm_from_url(url).items():
            tags.setdefault(key, value)
    return tags


MAX_CUSTOM_KEY = 64
CUSTOM_KEY_HELP = (
    "a custom field's name is 1-64 letters of any script, digits, `_`, `.` and `-` (a letter's"
    " accents in Unicode's composed form, NFC)"
)
# Letters and marks that show nothing, so a name of them reads as another name or as none:
# Hangul fillers, Khmer's inherent vowels, Mongolian and other variation selectors, the
# combining grapheme joiner. (Format characters, zero-width and direction ones, are no letters.)
_INVISIBLE = frozenset(
    "\u034f\u115f\u1160\u17b4\u17b5\u180b\u180c\u180d\u180f\u3164\uffa0"
    + "".join(map(chr, range(0xFE00, 0xFE10)))
    + "".join(map(chr, range(0xE0100, 0xE01F0)))
)


def is_custom_key(key: str) -> bool:
    """A custom field's name: 1-64 letters of any script ("Менеджер", "Qeyd", "備考"), each with
    the marks it carries, decimal digits, `_`, `.` and `-`, in Unicode's composed form. Nothing
    that needs escaping in JSON, HTML or a URL's path, nothing invisible, no space."""
    if not 0 < len(key) <= MAX_CUSTOM_KEY or not unicodedata.is_normalized("NFC", key):
        return False
    after = ""  # the kind of character before: a mark goes on a letter (or another mark)
    for char in key:
        kind = unicodedata.category(char)
        if char in _INVISIBLE or not (
            kind[0] == "L" or kind == "Nd" or char in "_.-" or (kind[0] == "M" and after in ("L", "M"))
        ):
            return False
        after = kind[0]
    return True


def custom_key(name: str) -> str | None:
    """The custom field a form's field or a file's column of this name fills: the name with
    each run of spaces as one `_` ("Дата обращения": `Дата_обращения`), its accents composed;
    None when that is no custom field's name (`Сумма, ₸`, `a/b`, longer than 64)."""
    key = "_".join(unicodedata.normalize("NFC", name).split())
    return key if is_custom_key(key) else None


def check_custom_key(key: str) -> str:
    """A custom field's name as an API client sends it: as it is, or refused."""
    if not is_custom_key(key):
        raise ValueError(CUSTOM_KEY_HELP)
    return key


# A currency's sign or name before or after an amount: ₸ 150 000, 150 000 тг, $1,500, 1500 AZN.
_CURRENCY = r"(?:[$€₸₼₽]|руб\.?|р\.?|тг\.?|тенге|manat|man\.?|azn|kzt|rub|usd|eur)"  # noqa: RUF001 (Cyrillic)
_CURRENCY_BEFORE = re.compile(rf"^{_CURRENCY}\s*", re.IGNORECASE)
_CURRENCY_AFTER = re.compile(rf"\s*{_CURRENCY}$", re.IGNORECASE)
_PLAIN_NUMBER = re.compile(r"^\d+(?:\.\d+)?$")
# A dot before three digits after one to three others, 1.500 or 12.500: thousands, as Azerbaijan
# and many in Kazakhstan write them (and as scoring reads a number in text), not a budget of 1.5.
_DOT_THOUSANDS = re.compile(r"^[1-9]\d{0,2}\.\d{3}$")
# Thousands in groups of three, each after the same separator (a space, a no-break space as
# Excel-ru writes, a narrow one, a comma or a dot), then maybe a decimal point or comma. A
# first group of 0 is no thousand: 0.500 is a half.
_GROUPED = re.compile(
    r"^(?P<whole>[1-9]\d{0,2}(?P<sep>[ \u00a0\u202f\u2009.,])\d{3}(?:(?P=sep)\d{3})*|\d+)"
    r"(?:(?P<point>[.,])(?P<fraction>\d+))?$"
)


def read_amount(value: Any) -> Any:
    """An amount as people write it, `1 500 000`, `1500000,50`, `1 500 000,50`, `150 000 ₸`,
    `$1,500.50`, read as the number; anything else as it came, for the field's own check to
    refuse. The currency goes (the lead has no field for it). Only the obvious is read: a comma
    before one or two digits at the end is a decimal one, groups of three are thousands: `1,500`
    and `1.500` are 1500 (a budget of 1.5 is no budget), `1.5` and `0.500` stay as they are,
    and `1500,500` is refused."""
    if not isinstance(value, str):
        return value
    text = _CURRENCY_AFTER.sub("", _CURRENCY_BEFORE.sub("", value.strip()))
    if _PLAIN_NUMBER.match(text) and not _DOT_THOUSANDS.match(text):
        return text
    found = _GROUPED.match(text)
    if not found:
        return value
    whole, sep, point, fraction = found.group("whole", "sep", "point", "fraction")
    if point and (point == sep or (point == "," and len(fraction) > 2)):
        return value
    return float(f"{whole.replace(sep, '') if sep else whole}.{fraction or 0}")


# Yes and no as a form or a spreadsheet writes them in Kazakh, Russian, Azerbaijani and English;
# ИСТИНА and ЛОЖЬ are a Russian-locale Excel's TRUE and FALSE.
_YES = frozenset({"да", "иә", "ия", "bəli", "hə", "истина", "yes", "true", "1"})
_NO = frozenset({"нет", "жоқ", "xeyr", "yox", "ложь", "no", "false", "0"})


def read_yes_or_no(value: Any) -> Any:
    """A yes-or-no answer in words, in any letter case, as True or False; anything else as it
    came, for the field's own check (on/off, true/false) to read or refuse."""
    if not isinstance(value, str):
        return value
    word = value.strip().replace("İ", "i").casefold()  # Azerbaijani's capital dotted İ: BƏLİ
    if word in _YES:
        return True
    if word in _NO:
        return False
    return value


OLDEST_BIRTHDAY_YEARS = 120
_BIRTHDAY = re.compile(r"^(\d{4}|-)-(\d{2})-(\d{2})$")
# Day first, as Kazakhstan, Azerbaijan and Russia write a date (Excel in their locales exports
# 15.03.1990): never month first. One separator throughout, the year in full.
_DAY_FIRST = re.compile(r"^(\d{1,2})([./-])(\d{1,2})\2(\d{4})$")


def check_birthday(raw: str, today: date) -> str:
    """An ISO date of birth, `YYYY-MM-DD`, or `--MM-DD` when the year is not known (Feb 29
    included), or a date written day first, `DD.MM.YYYY` (or with `/` or `-`); ValueError when
    not a real date, in the future or over 120 years ago. `today` is the UTC date: a birthday
    may be one day ahead of it (where the day has begun already)."""
    text = raw.strip()
    if day_first := _DAY_FIRST.match(text):
        day, _, month, year = day_first.groups()
    elif match := _BIRTHDAY.match(text):
        year, month, day = match.groups()
    else:
        raise ValueError("a birthday is YYYY-MM-DD or DD.MM.YYYY, or --MM-DD when the year is not known")
    try:
        born = date(2000 if year == "-" else int(year), int(month), int(day))  # 2000 had a Feb 29
    except ValueError as error:
        raise ValueError(f"{text!r} is not a real date") from error
    if year == "-":
        return f"--{born:%m-%d}"
    if born > today + timedelta(days=1):
        raise ValueError("a birthday cannot be in the future")
    if born.year < today.year - OLDEST_BIRTHDAY_YEARS or (
        born.year == today.year - OLDEST_BIRTHDAY_YEARS and (born.month, born.day) < (today.month, today.day)
    ):
        raise ValueError(f"a birthday cannot be more than {OLDEST_BIRTHDAY_YEARS} years ago")
    return born.isoformat()
