"""The built-in playbooks' messages to the person say only what is true as they stand: nothing
is attached or follows below (a template is all the person gets), no field is named that reads
as nothing to them, and no wording holds for one channel only, since a step goes by the lead's
preferred channel (an email step as an SMS); and no playbook says the same words twice."""

import re

import pytest
import yaml

from services.nurture.playbook_checks import TEMPLATE_FIELDS
from services.nurture.playbooks import Playbook, Playbooks, Template, default_playbooks_text
from services.nurture.safe_fields import for_the_person
from shared.languages import LANGUAGES, fill

PLAYBOOKS = Playbooks.model_validate(yaml.safe_load(default_playbooks_text()))
TO_THE_PERSON = sorted(
    {s.template for p in PLAYBOOKS.playbooks for s in p.steps if s.channel != "call_task"}
    | {o.template for o in PLAYBOOKS.occasions if o.channel != "call_task"}
)
_PLACEHOLDER = re.compile(r"\{(\w+)\}")

# Words that point at something beside the text (an attachment, a list below, material we
# "picked" or "prepared"), or that hold for an email only, in each language.
PROMISES = {
    "en": r"attach|enclos|\bbelow\b|here is|here are|we (have )?prepared|\bthese\b|this e-?mail|\bletter\b",
    "ru": r"прилага|приложени|вложени|ниже|вот что|подготовили|подобрали|расскажем|письм",
    "kk": r"тіркел|қоса беріл|төменде|дайындадық|таңдадық|айтып берейік|\bхат",
    "az": r"əlavə olunur|əlavədə|qoşma|aşağıda|hazırladıq|seçdik|təqdim edirik|danışmaq istəyirik|məktub",
}


def versions(name: str) -> dict[str, Template]:
    template = PLAYBOOKS.templates[name]
    return template if isinstance(template, dict) else {"en": template}


def a_lead_giving_everything() -> dict[str, str]:
    lead = {field: f"x{field}" for field in TEMPLATE_FIELDS}
    shaped = {"phone": "+77010000000", "call_window": "10:00-14:00", "birthday": "1990-03-22"}
    return lead | shaped | {"first_name": "Аружан", "last_name": "Серікқызы", "temperature": "warm"}


@pytest.mark.parametrize("name", sorted(PLAYBOOKS.templates))
def test_every_template_is_in_every_language_with_a_subject_where_its_english_has_one(name: str) -> None:
    """Their blanks: tests/shared/test_texts_in_their_language.py."""
    texts = versions(name)
    assert set(texts) == set(LANGUAGES), name
    assert {language: bool(text.subject) for language, text in texts.items()} == dict.fromkeys(
        LANGUAGES, bool(texts["en"].subject)
    ), name


@pytest.mark.parametrize("name", TO_THE_PERSON)
def test_a_message_to_the_person_names_only_fields_it_can_show_them(name: str) -> None:
    """A visitor's free text (company, need...) reads as nothing to the person (safe_fields):
    a template naming it reads to whoever edits it as if the person were told their company."""
    shown = for_the_person(a_lead_giving_everything())
    never_shown = [
        (language, field)
        for language, text in versions(name).items()
        for field in _PLACEHOLDER.findall(text.subject + text.body)
        if not fill("{" + field + "}", shown, language)
    ]
    assert not never_shown, name


@pytest.mark.parametrize("name", TO_THE_PERSON)
def test_a_message_to_the_person_promises_nothing_it_does_not_carry(name: str) -> None:
    promised = [
        (language, found[0])
        for language, text in versions(name).items()
        if (found := re.search(PROMISES[language], f"{text.subject}\n{text.body}", re.IGNORECASE))
    ]
    assert not promised, name


@pytest.mark.parametrize("playbook", PLAYBOOKS.playbooks, ids=[p.name for p in PLAYBOOKS.playbooks])
def test_no_playbook_sends_the_person_the_same_words_twice(playbook: Playbook) -> None:
    """The warm playbook sent `case_study` on day 5 and again on day 24, word for word; the MQL
    and cold ones `content` twice, the lost one `reengage` twice."""
    said = [s.template for s in playbook.steps if s.channel != "call_task"]
    assert len(said) == len(set(said)), said
