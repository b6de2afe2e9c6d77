"""Playbooks: follow-up sequences as versioned configuration (YAML, validated when loaded).
Pure, no I/O. `default_playbooks.yaml` is version 1, with the source of each default
(DOMAIN.md "Follow-up").

A lead is in at most one playbook: the first whose `when` matches its temperature, stage or
channel. When a classification moves it to another playbook, what is still scheduled in the
old one is cancelled and the new one starts.
"""

import re
from datetime import datetime, time, timedelta
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    TypeAdapter,
    field_validator,
    model_validator,
)

from shared.documents import parse_document
from shared.languages import FALLBACK, Language
from shared.times import ZoneName

Channel = Literal["email", "sms", "messenger", "call_task"]
DEFAULT_PLAYBOOKS = Path(__file__).with_name("default_playbooks.yaml")
_DELAY = re.compile(r"^(\d+(?:\.\d+)?)\s*(s|m|h|d|w)$")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
# The latest a step may come: a year from the start (DOMAIN.md "Follow-up": a renewal, a
# birthday); and the start plus it stays within the years a date can have.
LONGEST_DELAY = timedelta(days=365)


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def parse_delay(text: str) -> timedelta:
    match = _DELAY.match(text.strip().lower())
    if not match:
        raise ValueError(f"{text!r} is not a delay like 30m, 2h, 3d or 1w")
    seconds = float(match.group(1)) * _UNITS[match.group(2)]  # inf when too long for a float
    if seconds > LONGEST_DELAY.total_seconds():
        raise ValueError(f"{text!r} is longer than {LONGEST_DELAY.days}d, the longest a step may wait")
    return timedelta(seconds=seconds)


class Template(_Strict):
    """A message: its subject (emails) and body, with the lead's fields in braces."""

    subject: str = ""
    body: Annotated[str, Field(min_length=1)]
    # It says a rep will call soon: sent only while an active rep holds the lead and its call
    # window is open, else cancelled (`call_promises`).
    promises_a_call: bool = False


# A template is one text for everyone, or one per language (kk, ru, az, en): the lead gets
# the text in its language, else its source's, else English, else the first given.
Templates = Template | Annotated[dict[Language, Template], Field(min_length=1)]


class Step(_Strict):
    after: str  # from the start of the playbook: 0m, 2d, 3w
    channel: Channel
    template: str
    # Said only while true ("we'll call you within 15 minutes"): not sent once this long past
    # its due time, however the lead's hours or the weekly cap would put it off (cancelled).
    within: str | None = None
    # A first word to the person ("thank you for your interest"): not sent to a lead already
    # written to or called when it moves into this playbook (`said_already`).
    greeting: bool = False

    @field_validator("after", "within")
    @classmethod
    def _delay(cls, value: str | None) -> str | None:
        if value is not None:
            parse_delay(value)
        return value

    @property
    def expiry(self) -> timedelta | None:
        return parse_delay(self.within) if self.within is not None else None

    @property
    def delay(self) -> timedelta:
        return parse_delay(self.after)


# Stages only a playbook naming them takes: a disqualified lead (spam, inquiry only, a
# competitor's probe: a side exit, DOMAIN.md) is not nurtured, or called, for its temperature.
NAMED_ONLY = frozenset({"disqualified"})


class When(_Strict):
    temperature: list[str] = []
    stage: list[str] = []
    channel: list[str] = []

    def matches(self, temperature: str | None, stage: str | None, channel: str | None) -> bool:
        if stage in NAMED_ONLY and stage not in self.stage:
            return False
        checks = ((self.temperature, temperature), (self.stage, stage), (self.channel, channel))
        return all(not allowed or value in allowed for allowed, value in checks)


class Playbook(_Strict):
    name: Annotated[str, Field(pattern=r"^[a-z0-9_]+$")]
    when: When
    steps: Annotated[list[Step], Field(min_length=1)]


def _as_written(number: int) -> str | None:
    """The H:MM or H:MM:SS YAML 1.1 read as `number` (base 60), if it was a time of day."""
    if 60 <= number < 24 * 60:
        return f"{number // 60}:{number % 60:02d}"
    if 3600 <= number < 24 * 3600:
        hours, rest = divmod(number, 3600)
        return f"{hours}:{rest // 60:02d}:{rest % 60:02d}"
    return None


def _local_hour(value: Any) -> time:
    """A local time of day written HH:MM, quoted: YAML reads an unquoted 21:00 as the number
    1260 (base 60), which would be 00:21; and an offset would not be the lead's zone's."""
    if isinstance(value, time) and value.tzinfo is None:
        return value
    written = _as_written(value) if isinstance(value, int) and not isinstance(value, bool) else None
    if written is not None:
        raise ValueError(
            f'YAML reads an unquoted {written} as the number {value}: write it in quotes: "{written}"'
        )
    if not isinstance(value, str) or not re.fullmatch(r"\d{1,2}:\d{2}(:\d{2})?", value.strip()):
        raise ValueError(f'{value!r} is not a local hour like "10:00" (in quotes, no offset)')
    hour, _, rest = value.strip().partition(":")
    return time.fromisoformat(f"{int(hour):02d}:{rest}")


LocalHour = Annotated[time, BeforeValidator(_local_hour)]
"""A time of day in the lead's zone: quiet hours, the call window, an occasion's hour."""


class Window(_Strict):
    start: LocalHour
    end: LocalHour

    def contains(self, moment: time) -> bool:
        if self.start <= self.end:
            return self.start <= moment < self.end
        return moment >= self.start or moment < self.end  # across midnight

    def leaves_a_moment_outside(self, other: "Window") -> bool:
        """Some minute of the day is inside this window and outside `other` (quiet hours)."""
        minutes = (time(m // 60, m % 60) for m in range(24 * 60))
        return any(self.contains(t) and not other.contains(t) for t in minutes)

    @classmethod
    def parse(cls, text: str) -> "Window":
        start, _, end = text.replace(" ", "").partition("-")
        return cls(start=time.fromisoformat(start), end=time.fromisoformat(end))


class Occasion(_Strict):
    """A greeting to customers once a year: on their birthday, or on a holiday's date (MM-DD;
    a Feb 29 comes on Feb 28 in other years), at `at` in the lead's time zone; to leads of
    `languages` only when given (Nauryz for kk and ru, Novruz for az)."""

    name: Annotated[str, Field(pattern=r"^[a-z0-9_]+$")]
    day: str  # "birthday", or a date "MM-DD"
    channel: Channel = "email"
    template: str
    at: LocalHour = time(10, 0)
    languages: list[Language] = []

    @field_validator("day")
    @classmethod
    def _day(cls, value: str) -> str:
        if value == "birthday":
            return value
        try:
            datetime.strptime(f"2000-{value}", "%Y-%m-%d")  # 2000 had a Feb 29
        except ValueError:
            raise ValueError(f"{value!r} is neither `birthday` nor a date MM-DD, like 01-01") from None
        if len(value) != 5:
            raise ValueError(f"{value!r} is not a date MM-DD, like 03-22")
        return value


class Playbooks(_Strict):
    timezone: ZoneName = "Asia/Almaty"  # when the lead gives none (an IANA name)
    quiet_hours: Window  # no SMS, messenger or call in the lead's night
    call_window: Window  # calls when the lead gave no window of their own (004:397-398)
    weekly_cap: Annotated[int, Field(ge=1, le=50)]  # touches per lead in any 7 days
    templates: dict[str, Templates]
    playbooks: list[Playbook]
    occasions: list[Occasion] = []  # birthday and holiday greetings (greetings.py)

    def text(self, name: str, language: Language) -> Template | None:
        return text_in(self.templates, name, language)

    @model_validator(mode="after")
    def _templates_exist(self) -> "Playbooks":
        named = {s.template for p in self.playbooks for s in p.steps} | {o.template for o in self.occasions}
        missing = sorted(named - set(self.templates))
        if missing:
            raise ValueError(f"steps or occasions name templates that do not exist: {missing}")
        names = [p.name for p in self.playbooks]
        if len(names) != len(set(names)):
            raise ValueError("playbook names must be unique")
        occasions = [o.name for o in self.occasions]
        if len(occasions) != len(set(occasions)):
            raise ValueError("occasion names must be unique")
        return self

    def select(self, temperature: str | None, stage: str | None, channel: str | None) -> Playbook | None:
        return next((p for p in self.playbooks if p.when.matches(temperature, stage, channel)), None)


def text_in(templates: dict[str, Templates], name: str, language: Language) -> Template | None:
    """The template `name` in `language`, or the nearest one it has."""
    template = templates.get(name)
    if template is None or isinstance(template, Template):
        return template
    return template.get(language) or template.get(FALLBACK) or next(iter(template.values()))


TEMPLATES: TypeAdapter[dict[str, Templates]] = TypeAdapter(dict[str, Templates])
"""A stored version's templates alone: they read when the rest of it breaks a later bound."""


def parse_playbooks(document: str | dict[str, Any]) -> Playbooks:
    """Playbooks from YAML text or a parsed mapping; InvalidInput says what is wrong and where."""
    return parse_document(document, Playbooks)


def default_playbooks_text() -> str:
    return DEFAULT_PLAYBOOKS.read_text(encoding="utf-8")


def plan(playbook: Playbook, start: datetime) -> list[tuple[int, Step, datetime]]:
    """Each step with its due time (before quiet hours and caps move it)."""
    return [(index, step, start + step.delay) for index, step in enumerate(playbook.steps)]
