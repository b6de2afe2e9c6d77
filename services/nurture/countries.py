# ruff: noqa: RUF001, RUF002  (Azerbaijani's dotless i in the names is the point here)
"""Which country a territory or a lead's country names: pure, no I/O.

A country is known by its ISO 3166 alpha-2 or alpha-3 code, and by its names in English,
Russian, Kazakh and Azerbaijani (the languages of the forms leads come from): ISO 3166's names
and their translations (pycountry: "Russian Federation", "Республика Казахстан"), and the
names people use, Unicode CLDR's (babel: "Россия", "Ресей", "Rusiya", "Qazaxıstan"), and a
few that neither carries (`ALSO_KNOWN_AS`). Read in any letter case, with or without accents,
ё's dots or Azerbaijani's ə and ı (typed as e and i on a keyboard without them), punctuation as
spaces. A name that two countries share is nobody's. Built once, on first use; each text's
answer is cached, as routing asks for every rep of every hot lead.
"""

import gettext
import re
import unicodedata
from functools import lru_cache

import pycountry
from babel import Locale

ISO_LANGUAGES = ("ru", "kk", "az")  # pycountry's translations of the English names
CLDR_LOCALES = ("en", "ru", "kk", "az", "az_Cyrl")
_NOT_A_WORD = re.compile(r"[\W_]+")
_TYPED_PLAIN = str.maketrans({"ə": "e", "ı": "i"})

# Names people here write that neither library has: Kazakh in its Latin alphabet, an older
# English spelling, Russian's and Azerbaijani's usual short forms, the official ones of Kyrgyzstan.
ALSO_KNOWN_AS = {
    "KZ": ("Qazaqstan", "Qazaqstan Respublikasy", "Kazakstan"),
    "AZ": ("Azerbaijan Republic", "Азербайджанская Республика", "Azərbaycan Respublikası"),
    "KG": ("Кыргызстан", "Кыргызская Республика"),
    "TR": ("Turkey",),
    "GB": ("UK", "Great Britain"),
    "US": ("США", "ABŞ"),
}


def country_of(text: object) -> str | None:
    """The alpha-2 code of the country `text` names, or None (not a country, or not text)."""
    return _country_of(text) if isinstance(text, str) else None


@lru_cache(maxsize=8192)
def _country_of(text: str) -> str | None:
    return _names().get(_key(text))


def _key(text: str) -> str:
    folded = unicodedata.normalize("NFKD", text.casefold().translate(_TYPED_PLAIN))
    bare = "".join(c for c in folded if not unicodedata.combining(c))
    return _NOT_A_WORD.sub(" ", bare).strip()


@lru_cache(maxsize=1)
def _names() -> dict[str, str]:
    found: dict[str, set[str]] = {}
    also = [(code, name) for code, names in ALSO_KNOWN_AS.items() for name in names]
    for code, name in _iso_names() + _cldr_names() + also:
        if key := _key(name):
            found.setdefault(key, set()).add(code)
    return {key: codes.pop() for key, codes in found.items() if len(codes) == 1}


def _iso_names() -> list[tuple[str, str]]:
    translations = [gettext.NullTranslations()] + [
        gettext.translation("iso3166-1", pycountry.LOCALES_DIR, languages=[language])
        for language in ISO_LANGUAGES
    ]
    names = []
    for country in pycountry.countries:
        names += [(country.alpha_2, country.alpha_2), (country.alpha_2, country.alpha_3)]
        for field in ("name", "official_name", "common_name"):
            english = getattr(country, field, None)
            names += [(country.alpha_2, t.gettext(english)) for t in translations if english]
    return names


def _cldr_names() -> list[tuple[str, str]]:
    iso = {country.alpha_2 for country in pycountry.countries}
    return [
        (code, name)
        for locale in CLDR_LOCALES
        for code, name in Locale.parse(locale).territories.items()
        if code in iso  # not CLDR's regions (EU, 419) or its Unknown Region (ZZ)
    ]
