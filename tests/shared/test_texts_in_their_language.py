"""Every word people read (shared/texts.yaml and the built-in playbooks' templates) is written in
each of the four languages with the blanks of its English, and the Kazakh and Azerbaijani ones
are Kazakh and Azerbaijani: not the Russian or English left in place, nor in another script."""

import re

import pytest
import yaml

from services.nurture.playbooks import Playbooks, default_playbooks_text
from shared.languages import LANGUAGES, TEXTS

_OPTIONAL = re.compile(r"\[([^\[\]]*)\]")
_PLACEHOLDER = re.compile(r"\{(\w+)\}")
_CYRILLIC = re.compile(r"[\u0400-\u04ff]")
# What a Kazakh text may write in Latin letters: abbreviations sales teams write so, and the
# address a form shows as an example.
_LATIN_IN_KAZAKH = {"SMS", "SLA", "CRM", "name", "example", "com"}
# Words Kazakh shares with Russian, spelt alike: a short text of them alone is Kazakh too.
_SHARED_WITH_RUSSIAN = {"Телефон", "Компания", "Бюджет"}


def every_text() -> list[tuple[str, dict[str, str]]]:
    texts: dict[str, dict[str, str]] = yaml.safe_load(TEXTS.read_text(encoding="utf-8"))
    found = list(texts.items())
    playbooks = Playbooks.model_validate(yaml.safe_load(default_playbooks_text()))
    for name, template in playbooks.templates.items():
        assert isinstance(template, dict), f"{name} is one text for every language"
        for part in ("subject", "body"):
            written = {language: getattr(text, part) for language, text in template.items()}
            found += [(f"{name}.{part}", written)] if any(written.values()) else []
    return found


def blanks(text: str) -> list[tuple[str, ...]]:
    parts = [tuple(sorted(_PLACEHOLDER.findall(part))) for part in _OPTIONAL.findall(text)]
    return sorted([tuple(sorted(_PLACEHOLDER.findall(_OPTIONAL.sub("", text)))), *parts])


def words(text: str) -> list[str]:
    return re.findall(r"\w+", _PLACEHOLDER.sub(" ", text))


TEXTS_FOUND = every_text()


@pytest.mark.parametrize(("key", "written"), TEXTS_FOUND, ids=[key for key, _ in TEXTS_FOUND])
def test_every_language_has_the_blanks_of_its_english(key: str, written: dict[str, str]) -> None:
    assert set(written) == set(LANGUAGES), key
    for language, text in written.items():
        assert blanks(text) == blanks(written["en"]), (key, language, text)


@pytest.mark.parametrize(("key", "written"), TEXTS_FOUND, ids=[key for key, _ in TEXTS_FOUND])
def test_the_kazakh_text_is_kazakh(key: str, written: dict[str, str]) -> None:
    kazakh = written["kk"]
    latin = [w for w in words(kazakh) if re.search("[A-Za-z]", w) and w not in _LATIN_IN_KAZAKH]
    assert not latin, (key, kazakh)
    if set(words(kazakh)) - _SHARED_WITH_RUSSIAN:
        assert kazakh != written["ru"], (key, kazakh)
    if len(words(kazakh)) >= 4:  # a sentence, not a term: it has letters Russian lacks
        assert re.search("[әғқңөұүһіӘҒҚҢӨҰҮҺІ]", kazakh), (key, kazakh)


@pytest.mark.parametrize(("key", "written"), TEXTS_FOUND, ids=[key for key, _ in TEXTS_FOUND])
def test_the_azerbaijani_text_is_azerbaijani(key: str, written: dict[str, str]) -> None:
    azerbaijani = written["az"]
    assert not _CYRILLIC.search(azerbaijani), (key, azerbaijani)
    assert azerbaijani != written["en"] or len(words(azerbaijani)) <= 1, (key, azerbaijani)


# The formal "you", capitalised as every other text writes it: Вы, Сіз, Siz (one lower-case
# "вам" among the rest reads as a slip to the person).
_LOWER_CASE_YOU = {
    "ru": re.compile(r"\b(вы|вас|вам|вами|ваш\w*)\b"),
    "kk": re.compile(r"\bсіз\w*"),
    "az": re.compile(r"\bsiz\w*"),
}


@pytest.mark.parametrize(("key", "written"), TEXTS_FOUND, ids=[key for key, _ in TEXTS_FOUND])
def test_the_formal_you_is_capitalised_in_russian_kazakh_and_azerbaijani(
    key: str, written: dict[str, str]
) -> None:
    lower = {
        language: found
        for language, rule in _LOWER_CASE_YOU.items()
        if (found := rule.findall(written[language]))
    }
    assert not lower, (key, lower)
