"""What a new version of the playbooks may not hold, besides what their model refuses: a
template's placeholder other than a field's name alone, and a `when` naming a stage or
temperature there is not. Pure. A version stored before these checks keeps being read as it
is (its typo never matched; `fill` honours no format spec), so they bind at publishing only."""

import string
from typing import Any, get_args

from services.nurture.playbooks import Playbooks, Template, parse_playbooks
from shared.events.scoring import Stage, Temperature
from shared.http import InvalidInput

# What a template may name (README "In their language"): the person's fields as a form gives
# them and scoring's classification carries them, the words `fill` makes of them, and where
# the lead stands. Any other name would always read as nothing.
TEMPLATE_FIELDS = frozenset(
    {
        *("email", "phone", "first_name", "last_name", "company", "job_title", "industry"),
        *("company_size", "country", "city", "timezone", "language", "budget", "timeframe"),
        *("need", "message", "preferred_channel", "birthday", "call_window", "campaign"),
        *("referred_by", "page_url", "referrer", "channel"),
        *("name", "who", "contact", "lead"),  # fill's
        *("temperature", "stage"),
    }
)
KNOWN = {"stage": get_args(Stage), "temperature": get_args(Temperature)}
_FORMAT = string.Formatter()


def parse_new_playbooks(document: str | dict[str, Any]) -> Playbooks:
    """The playbooks, as `parse_playbooks` reads them; InvalidInput names each template and
    placeholder, and each `when` value, a new version may not hold."""
    playbooks = parse_playbooks(document)
    problems = [*_when_problems(playbooks), *_template_problems(playbooks), *_hours_problems(playbooks)]
    if problems:
        raise InvalidInput(problems)
    return playbooks


def _hours_problems(playbooks: Playbooks) -> list[tuple[str, str]]:
    """A call window inside the quiet hours lets no call task go, ever (each was put off a
    few weeks at a time, looking for a moment)."""
    window, quiet = playbooks.call_window, playbooks.quiet_hours
    if window.leaves_a_moment_outside(quiet):
        return []
    hours = f"{quiet.start:%H:%M}-{quiet.end:%H:%M}"
    return [("call_window", f"lies inside quiet_hours ({hours}): no call task could ever be made")]


def _when_problems(playbooks: Playbooks) -> list[tuple[str, str]]:
    found = []
    for number, playbook in enumerate(playbooks.playbooks):
        for field, known in KNOWN.items():
            for index, value in enumerate(getattr(playbook.when, field)):
                if value not in known:
                    where = f"playbooks.{number}.when.{field}.{index}"
                    found.append((where, f"{value!r} is not a {field}: one of {', '.join(known)}"))
    return found


def _template_problems(playbooks: Playbooks) -> list[tuple[str, str]]:
    found = []
    for name, templates in playbooks.templates.items():
        versions = (
            {"": templates} if isinstance(templates, Template) else {f"{k}.": v for k, v in templates.items()}
        )
        for language, template in versions.items():
            for part in ("subject", "body"):
                if reason := _placeholder_problem(getattr(template, part)):
                    found.append((f"templates.{name}.{language}{part}", reason))
    return found


def _placeholder_problem(text: str) -> str | None:
    try:
        pieces = list(_FORMAT.parse(text))
    except ValueError:
        return "a { or } with no pair: write {{ or }} for a brace itself"
    for _, field, spec, conversion in pieces:
        if field is None:
            continue
        written = "{" + field + (f"!{conversion}" if conversion else "") + (f":{spec}" if spec else "") + "}"
        if spec or conversion or not field.isidentifier():
            return (
                f"{written}: a placeholder is a field's name alone, like {{first_name}}"
                " (no format, conversion, attribute or index)"
            )
        if field not in TEMPLATE_FIELDS:
            return f"{written}: no such field; a template may name {', '.join(sorted(TEMPLATE_FIELDS))}"
    return None
