"""Playbooks documents nurture cannot use are a 422 naming where: a step too far off to
schedule, a body nested too deeply, YAML anchors and aliases, a template's placeholder that is
not a field's name alone, a `when` naming a stage or temperature there is not. Never a 500, and
never a version whose scheduling fails."""

from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
import yaml

from services.nurture.app import create_app
from services.nurture.config import NurtureSettings
from services.nurture.playbook_checks import TEMPLATE_FIELDS
from services.nurture.playbooks import LONGEST_DELAY, default_playbooks_text, parse_playbooks, plan
from shared.languages import fill
from tests.conftest import ADMIN, Servers, running
from tests.helpers import alias_bomb, refused_fields


@pytest.fixture(scope="module")
async def nurture(servers: Servers) -> AsyncIterator[httpx.AsyncClient]:
    async with running(create_app(servers.settings(NurtureSettings, touches_enabled=False))) as client:
        yield client


def with_last_step_after(after: str) -> tuple[dict[str, Any], str]:
    """The default playbooks with the last step of the second playbook `after`; and where it is."""
    document = yaml.safe_load(default_playbooks_text())
    steps = document["playbooks"][1]["steps"]
    steps[-1]["after"] = after
    return document, f"playbooks.1.steps.{len(steps) - 1}.after"


@pytest.mark.parametrize("after", ["99999999w", "99999999999999999999w", "9" * 400 + "d", "53w", "366d"])
async def test_a_step_later_than_a_year_is_refused_naming_it(nurture: httpx.AsyncClient, after: str) -> None:
    document, where = with_last_step_after(after)
    response = await nurture.put("/v1/playbooks", json=document, headers=ADMIN)
    assert refused_fields(response) == [where]
    assert "365d" in response.json()["errors"][0]["reason"]


def test_a_step_a_year_on_is_scheduled() -> None:
    document, _ = with_last_step_after("365d")
    playbook = parse_playbooks(document).playbooks[1]
    start = datetime(9998, 1, 1, tzinfo=UTC)
    assert plan(playbook, start)[-1][2] == start + LONGEST_DELAY


@pytest.mark.parametrize(
    ("body", "media_type"),
    [
        ("[" * 20000 + "]" * 20000, "application/json"),
        ("[" * 20000 + "]" * 20000, "application/yaml"),
        ("playbooks:\n  - " + "[" * 40 + "]" * 40, "application/yaml"),
    ],
    ids=["json", "yaml", "yaml 40 levels"],
)
async def test_a_body_nested_too_deeply_is_refused(
    nurture: httpx.AsyncClient, body: str, media_type: str
) -> None:
    headers = {**ADMIN, "content-type": media_type}
    response = await nurture.put("/v1/playbooks", content=body, headers=headers)
    assert refused_fields(response) == ["body"]
    assert response.json()["errors"][0]["reason"].startswith("nested more than 32 levels deep")


@pytest.mark.parametrize("levels", [7, 9])
async def test_yaml_anchors_and_aliases_are_refused(nurture: httpx.AsyncClient, levels: int) -> None:
    headers = {**ADMIN, "content-type": "application/yaml"}
    response = await nurture.put("/v1/playbooks", content=alias_bomb(levels), headers=headers)
    assert refused_fields(response) == ["body"]
    assert "anchors and aliases" in response.json()["errors"][0]["reason"]


async def test_a_date_yaml_cannot_read_is_a_422_at_its_line(nurture: httpx.AsyncClient) -> None:
    body = "playbooks: []\nholidays: 2026-02-30\n"
    headers = {**ADMIN, "content-type": "application/yaml"}
    response = await nurture.put("/v1/playbooks", content=body, headers=headers)
    assert refused_fields(response) == ["line 2, column 11"]
    assert "day is out of range for month" in response.json()["errors"][0]["reason"]


def default_with(line: str, written: str) -> str:
    """The default playbooks' YAML with its `line` written as `written`."""
    text = default_playbooks_text()
    assert line in text
    return text.replace(line, written, 1)


QUIET = 'quiet_hours: {start: "21:00", end: "09:00"}'
CALLS = 'call_window: {start: "10:00", end: "18:00"}'
NEW_YEAR_AT = 'template: new_year, at: "10:00"}'


@pytest.mark.parametrize(
    ("line", "written", "where", "quoted"),
    [
        (QUIET, "quiet_hours: {start: 21:00, end: '09:00'}", "quiet_hours.start", '"21:00"'),
        (QUIET, "quiet_hours: {start: '21:00', end: 8:30}", "quiet_hours.end", '"8:30"'),
        (CALLS, "call_window: {start: 10:00, end: '18:00'}", "call_window.start", '"10:00"'),
        (CALLS, "call_window: {start: '10:00', end: 18:00:30}", "call_window.end", '"18:00:30"'),
        (NEW_YEAR_AT, "template: new_year, at: 10:00}", "occasions.1.at", '"10:00"'),
    ],
)
async def test_an_unquoted_time_of_day_is_refused_asking_for_quotes(
    nurture: httpx.AsyncClient, line: str, written: str, where: str, quoted: str
) -> None:
    """YAML 1.1 reads an unquoted 21:00 as the number 1260 (base 60), which was taken as
    00:21: quiet hours from 21:00 to 00:21."""
    headers = {**ADMIN, "content-type": "application/yaml"}
    response = await nurture.put("/v1/playbooks", content=default_with(line, written), headers=headers)
    assert refused_fields(response) == [where]
    assert f"write it in quotes: {quoted}" in response.json()["errors"][0]["reason"]


@pytest.mark.parametrize("window", ['{start: "22:00", end: "23:00"}', '{start: "10:00", end: "10:00"}'])
async def test_a_call_window_inside_the_quiet_hours_is_refused(
    nurture: httpx.AsyncClient, window: str
) -> None:
    """No call task could ever go: each was put off weeks at a time (found by an outside review)."""
    headers = {**ADMIN, "content-type": "application/yaml"}
    response = await nurture.put(
        "/v1/playbooks", content=default_with(CALLS, f"call_window: {window}"), headers=headers
    )
    assert refused_fields(response) == ["call_window"]
    assert "lies inside quiet_hours (21:00-09:00)" in response.json()["errors"][0]["reason"]


async def test_quoted_times_of_day_are_taken_as_written(nurture: httpx.AsyncClient) -> None:
    headers = {**ADMIN, "content-type": "application/yaml"}
    written = default_with(CALLS, 'call_window: {start: "9:30", end: "18:00:00"}')
    response = await nurture.put("/v1/playbooks", content=written, headers=headers)
    assert response.status_code == 201, response.text
    document = (await nurture.get("/v1/playbooks", headers=ADMIN)).json()["playbooks"]
    assert document["quiet_hours"] == {"start": "21:00:00", "end": "09:00:00"}
    assert document["call_window"] == {"start": "09:30:00", "end": "18:00:00"}


@pytest.mark.parametrize("zone", ["Mars/Olympus", "+05:00", "UTC+5", "localtime", "posixrules", ""])
async def test_a_timezone_zoneinfo_does_not_know_is_refused(nurture: httpx.AsyncClient, zone: str) -> None:
    """Each was taken, and the playbooks' zone was then UTC: a call due at 10:00 Almaty time
    went at 10:00Z."""
    headers = {**ADMIN, "content-type": "application/yaml"}
    written = default_with("timezone: Asia/Almaty", f"timezone: {zone!r}")
    response = await nurture.put("/v1/playbooks", content=written, headers=headers)
    assert refused_fields(response) == ["timezone"]
    assert "IANA time zone" in response.json()["errors"][0]["reason"]


@pytest.mark.parametrize("zone", ["Asia/Almaty", "UTC", "Europe/Berlin"])
async def test_an_iana_timezone_is_taken(nurture: httpx.AsyncClient, zone: str) -> None:
    headers = {**ADMIN, "content-type": "application/yaml"}
    written = default_with("timezone: Asia/Almaty", f"timezone: {zone}")
    response = await nurture.put("/v1/playbooks", content=written, headers=headers)
    assert response.status_code == 201, response.text
    assert (await nurture.get("/v1/playbooks", headers=ADMIN)).json()["playbooks"]["timezone"] == zone


@pytest.mark.parametrize(
    ("template", "where", "text", "placeholder"),
    [
        ("welcome", "templates.welcome.ru.body", "Hello {first_name:>3000000}", "{first_name:>3000000}"),
        ("welcome", "templates.welcome.en.subject", "Hi {first_name!r}", "{first_name!r}"),
        ("content", "templates.content.kk.body", "Hi {email.__class__}", "{email.__class__}"),
        ("content", "templates.content.az.body", "Hi {phone[0]}", "{phone[0]}"),
        ("content", "templates.content.en.body", "Hi {0} and {}", "{0}"),
        ("welcome", "templates.welcome.en.body", "Hi {favourite_colour}", "{favourite_colour}"),
    ],
)
async def test_a_placeholder_other_than_a_fields_name_is_refused_naming_it(
    nurture: httpx.AsyncClient, template: str, where: str, text: str, placeholder: str
) -> None:
    """Templates were Python format strings: `{first_name:>3000000}` made a 3 MB email for
    every touch, `!r` and `{email.__class__}` were taken, and an unknown field never filled."""
    document = yaml.safe_load(default_playbooks_text())
    language, part = where.split(".")[2:]
    document["templates"][template][language][part] = text
    response = await nurture.put("/v1/playbooks", json=document, headers=ADMIN)
    assert refused_fields(response) == [where]
    assert response.json()["errors"][0]["reason"].startswith(f"{placeholder}: ")


async def test_every_field_a_template_may_name_is_taken_by_its_name_alone(nurture: httpx.AsyncClient) -> None:
    document = yaml.safe_load(default_playbooks_text())
    every = " ".join(f"[{{{name}}}]" for name in sorted(TEMPLATE_FIELDS))
    document["templates"]["welcome"] = {"subject": "{{braces}} stay", "body": every}
    response = await nurture.put("/v1/playbooks", json=document, headers=ADMIN)
    assert response.status_code == 201, response.text
    document["templates"]["welcome"]["body"] = every.replace("}", ":.3}")
    assert refused_fields(await nurture.put("/v1/playbooks", json=document, headers=ADMIN)) == [
        "templates.welcome.body"
    ]


def test_filling_honours_no_format_spec_conversion_or_attribute() -> None:
    """What a version stored before the check may still hold: the field's value alone."""
    person = {"first_name": "Fmt", "email": "fmt@example.kz"}
    assert fill("Hello {first_name:>3000000}", person) == "Hello Fmt"
    assert fill("Hi {first_name!r} {email.__class__}{email[0]}", person) == "Hi Fmt "
    assert fill("Call[ {who}] now[ ({contact})]", person) == "Call Fmt now (fmt@example.kz)"


@pytest.mark.parametrize(
    ("when", "where", "known"),
    [
        ({"stage": ["customer", "nonsense"]}, "playbooks.0.when.stage.1", "suspect, lead, mql, sql"),
        ({"temperature": ["lukewarm"]}, "playbooks.0.when.temperature.0", "cold, warm, hot"),
    ],
)
async def test_a_when_naming_no_known_stage_or_temperature_is_refused(
    nurture: httpx.AsyncClient, when: dict[str, list[str]], where: str, known: str
) -> None:
    """A typo (`mqll`, `lukewarm`) was taken, and the playbook quietly matched nobody."""
    document = yaml.safe_load(default_playbooks_text())
    document["playbooks"][0]["when"] = when
    response = await nurture.put("/v1/playbooks", json=document, headers=ADMIN)
    assert refused_fields(response) == [where]
    assert known in response.json()["errors"][0]["reason"]
