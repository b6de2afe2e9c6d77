"""Which language to answer a person in, and the words the services show (shared/texts.yaml):
the lead's language, else its source's default, else English."""

import html
import re
import string
from collections.abc import Mapping
from functools import cache
from pathlib import Path
from typing import Any, Literal

import yaml

Language = Literal["kk", "ru", "az", "en"]
LANGUAGES: tuple[Language, ...] = ("kk", "ru", "az", "en")
FALLBACK: Language = "en"
TEXTS = Path(__file__).with_name("texts.yaml")
# What forms and integrations send for a language, beyond the two-letter code.
_NAMES: dict[str, Language] = {
    "kz": "kk",
    "kaz": "kk",
    "kazakh": "kk",
    "қазақша": "kk",
    "қазақ": "kk",
    "rus": "ru",
    "russian": "ru",
    "русский": "ru",
    "aze": "az",
    "azerbaijani": "az",
    "azərbaycan": "az",
    "azərbaycanca": "az",
    "eng": "en",
    "english": "en",
}


def language_code(value: Any) -> Language | None:
    """ "ru", "RU", "ru-KZ", "kk_KZ", "Русский", "kz" -> the language, or None if not one of ours."""
    if not isinstance(value, str):
        return None
    text = value.strip().lower().replace("_", "-")
    head = text.split("-")[0]
    for candidate in (head, text):
        if candidate in LANGUAGES:
            return candidate
        if candidate in _NAMES:
            return _NAMES[candidate]
    return None


def choose(*preferences: Any) -> Language:
    """The first of `preferences` that is a language we write (the lead's, the source's...)."""
    return next((code for p in preferences if (code := language_code(p)) is not None), FALLBACK)


def browser_languages(accept_language: str | None) -> list[str]:
    """The languages of an `Accept-Language` header, most wanted first (`q=0` ones left out):
    "en;q=0.5, ru-RU" -> ["ru-RU", "en"]. Pass them on to `choose`."""
    wanted: list[tuple[float, int, str]] = []
    for index, part in enumerate((accept_language or "").split(",")):
        tag, _, parameter = part.partition(";")
        weight = parameter.strip().removeprefix("q=")
        try:
            quality = float(weight) if parameter else 1.0
        except ValueError:
            continue
        if tag.strip() and quality > 0:
            wanted.append((-quality, index, tag.strip()))
    return [tag for _, _, tag in sorted(wanted)]


@cache
def _texts() -> dict[str, dict[str, str]]:
    texts: dict[str, dict[str, str]] = yaml.safe_load(TEXTS.read_text(encoding="utf-8"))
    return texts


_OPTIONAL = re.compile(r"\[([^\[\]]*)\]")
_PLACEHOLDER = re.compile(r"\{(\w+)[^{}]*\}")
_FORMAT = string.Formatter()


def say(key: str, language: Language, /, **fields: Any) -> str:
    """The text `key` in `language` (English when it has none), filled (`fill`)."""
    versions = _texts()[key]
    return fill(versions.get(language) or versions[FALLBACK], fields, language)


def fill(text: str, fields: Mapping[str, Any], language: Language = FALLBACK) -> str:
    """`text` with its placeholders filled from `fields` (texts.yaml, playbook templates).

    A field not given (absent, None, blank, or a list or mapping) renders as nothing, and a
    part in square brackets is left out, brackets and all, unless every placeholder in it is
    given: `Call[ {who}] now[ ({contact})]` never reads "Call  now ()". Brackets around no
    placeholder stay as written. Besides the lead's own fields, a text can name `{name}`
    (first and last), `{who}` (the name, with the company in brackets; or the company),
    `{contact}` (phone and email) and `{lead}` (who, phone and email), each of what is given,
    joined by ", ", the phone with its extension in `language`'s words (`+77272500000 доб. 103`).
    A placeholder is a field's name alone: a format spec or conversion
    (`{first_name:>3000000}`, `!r`) is not honoured, and attribute or index access
    (`{email.__class__}`) renders as nothing. A text with a stray brace comes back as it is."""
    given = _about_the_person({k: v for k, v in fields.items() if _shown(v)}, language)

    def part(match: re.Match[str]) -> str:
        names = _PLACEHOLDER.findall(match[1])
        if not names:
            return match[0]
        return match[1] if all(name in given for name in names) else ""

    try:
        pieces = list(_FORMAT.parse(_OPTIONAL.sub(part, text)))
    except ValueError:
        return text
    return "".join(
        literal + ("" if name is None else str(given.get(name, ""))) for literal, name, _, _ in pieces
    )


def _shown(value: Any) -> bool:
    return (
        value is not None and not isinstance(value, Mapping | list | tuple | set) and bool(str(value).strip())
    )


def _about_the_person(given: dict[str, Any], language: Language) -> dict[str, Any]:
    """`given`, with the person put in words: name, who, contact and lead (what is given of
    each), unless the fields themselves have those names. An office line's extension follows
    its phone, for the rep who calls."""
    name = " ".join(str(given[k]) for k in ("first_name", "last_name") if k in given)
    company = str(given.get("company", ""))
    who = f"{name} ({company})" if name and company else name or company
    phone = given.get("phone")
    if phone is not None and "phone_extension" in given:
        word = _texts()["phone_extension"]
        phone = f"{phone} {word.get(language) or word[FALLBACK]} {given['phone_extension']}"
    contact = ", ".join(str(point) for point in (phone, given.get("email")) if point is not None)
    lead = ", ".join(part for part in (who, contact) if part)
    derived = {"name": name, "who": who, "contact": contact, "lead": lead}
    return {k: v for k, v in derived.items() if v} | given


def page(language: Language, title: str, *body: str) -> str:
    """A small HTML page in `language`; `body` is HTML already escaped by the caller."""
    return (
        f'<!doctype html><html lang="{language}"><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{html.escape(title)}</title>{''.join(body)}</html>"
    )


def language_of(lead: Mapping[str, Any]) -> Language:
    """The language to write to a lead in: its own, else its source's default, else English."""
    return choose(lead.get("language"), lead.get("source_language"))
