"""The words people read, for a lead that gave any part of name, company, phone, email and need:
every text of shared/texts.yaml and every template of the default playbooks, in each of their
languages, reads without empty brackets, stray commas or dangling colons."""

import itertools
import re

import pytest
import yaml

from services.nurture.playbooks import Playbooks, default_playbooks_text
from shared.languages import LANGUAGES, TEXTS, fill, say

PERSON = {
    "first_name": "Life",
    "last_name": "Ozturk",
    "company": "Acme LLP",
    "phone": "+77010000000",
    "email": "life@example.kz",
    "need": "a CRM",
}
EVERY_PART = [  # each of the 64 ways a lead gives some of these
    {name: PERSON[name] for name, kept in zip(PERSON, keep, strict=True) if kept}
    for keep in itertools.product((True, False), repeat=len(PERSON))
]
AWKWARD = re.compile(
    r"\( *\)|\( | \)| [,.!?:)]|, *[,.!?:—)]|: *[.!?,—]|— *[.!?,]|  |[\[\]{}]|^ *[,:.—]", re.MULTILINE
)


def reads_well(shown: str, text: str) -> bool:
    """No empty brackets, stray or doubled punctuation, or a sentence left hanging (a colon at
    the end only where the text ends with one, before a list it introduces)."""
    hanging = shown.rstrip().endswith((",", "—", "(", ":")) and not text.rstrip().endswith(":")
    return not AWKWARD.search(shown) and not hanging


TEXTS_LOADED: dict[str, dict[str, str]] = yaml.safe_load(TEXTS.read_text(encoding="utf-8"))
PLAYBOOKS = Playbooks.model_validate(yaml.safe_load(default_playbooks_text()))


def playbook_texts() -> list[tuple[str, str, str]]:
    found = []
    for name, template in PLAYBOOKS.templates.items():
        versions = template if isinstance(template, dict) else {"en": template}
        for language, text in versions.items():
            found += [(f"{name}.{language}.body", text.body, name)]
            found += [(f"{name}.{language}.subject", text.subject, name)] if text.subject else []
    return found


@pytest.mark.parametrize(
    ("where", "text"), [(f"{k}.{lang}", t) for k, v in TEXTS_LOADED.items() for lang, t in v.items()]
)
def test_every_text_reads_well_whatever_the_lead_gave(where: str, text: str) -> None:
    for given in EVERY_PART:
        always = {
            "lead_id": "9f1c",
            "days": 14,
            "budget": "1,500,000",
            "amount": "2,000,000 KZT",
            "plan": "1,000,000",
            "rep": "Aigerim",
        }
        shown = fill(text, given | always)  # what nurture always gives
        assert reads_well(shown, text), (where, given, shown)


@pytest.mark.parametrize(("where", "text"), [(where, text) for where, text, _ in playbook_texts()])
def test_every_default_template_reads_well_whatever_the_lead_gave(where: str, text: str) -> None:
    for given in EVERY_PART:
        shown = fill(text, given)
        assert reads_well(shown, text), (where, given, shown)


@pytest.mark.parametrize("language", LANGUAGES)
def test_the_rep_is_told_every_way_to_reach_the_lead_that_it_gave(language: str) -> None:
    for given in EVERY_PART:
        tasks = [PLAYBOOKS.text(name, language) for name in ("call_now", "follow_up_call")]
        shown = [say(key, language, **given) for key in ("rep_new_hot_lead", "rep_escalated")]
        shown += [fill(task.body, given) for task in tasks if task is not None]
        for way in ("phone", "email"):
            if way in given:
                assert all(given[way] in text for text in shown), (language, given, shown)


def test_a_lead_with_only_a_name_and_an_email() -> None:
    life = {"first_name": "Life", "email": "life@example.kz"}
    assert say("rep_new_hot_lead", "en", **life) == "Hot lead: Life, life@example.kz. Please call now."
    call_now = PLAYBOOKS.text("call_now", "en")
    assert call_now is not None
    assert fill(call_now.body, life) == "Call Life now (life@example.kz)"
    assert fill(call_now.body, life | {"company": "Acme", "need": "a CRM"}) == (
        "Call Life (Acme) now (life@example.kz): a CRM"
    )
    assert say("rep_new_hot_lead", "ru", phone="+77010000000") == (
        "Горячий лид: +77010000000. Позвоните, пожалуйста, прямо сейчас."
    )


@pytest.mark.parametrize(
    ("language", "word"), [("en", "ext."), ("ru", "доб."), ("kk", "ішкі"), ("az", "daxili")]
)
def test_the_rep_is_told_the_extension_of_an_office_number(language: str, word: str) -> None:
    """An office line's extension was kept on the lead, but the rep's text and call task gave
    the switchboard alone ("Hot lead: Life, +77272500000. Please call now.")."""
    office = {"first_name": "Life", "phone": "+77272500000", "phone_extension": "103"}
    call_now = PLAYBOOKS.text("call_now", language)
    assert call_now is not None
    shown = [say(key, language, **office) for key in ("rep_new_hot_lead", "rep_escalated")]
    shown.append(fill(call_now.body, office, language))
    assert all(f"+77272500000 {word} 103" in text for text in shown), shown
