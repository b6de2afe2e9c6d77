"""Which language to answer a person in, and the words the services show (shared/texts.yaml):
the lead's language, else its source's default, else English."""

import html
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


@cache
def _texts() -> dict[str, dict[str, str]]:
    texts: dict[str, dict[str, str]] = yaml.safe_load(TEXTS.read_text(encoding="utf-8"))
    return texts


class _Blank(dict[str, Any]):
    def __missing__(self, key: str) -> str:
        return ""


def say(key: str, language: Language, /, **fields: Any) -> str:
    """The text `key` in `language` (English when it has none), its placeholders filled."""
    versions = _texts()[key]
    text = versions.get(language) or versions[FALLBACK]
    return text.format_map(_Blank({k: v for k, v in fields.items() if v is not None}))


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
