"""Request and response models of the ingest API: leads, batches, imports and keys; the shared field types."""

from datetime import UTC, datetime, time
from typing import Annotated, Any, Literal
from uuid import UUID

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field, StringConstraints

from services.ingest.normalize import (
    check_birthday,
    check_custom_key,
    plain_text,
    read_amount,
    read_yes_or_no,
)
from shared.inputs import StorableInput
from shared.times import ZoneName

# A person's words: direction controls and invisible ends removed first (normalize.plain_text;
# a validator listed after the constraints runs before them, which keep their own errors).
Short = Annotated[
    str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200), BeforeValidator(plain_text)
]
Long = Annotated[str, StringConstraints(strip_whitespace=True, max_length=5000), BeforeValidator(plain_text)]
Url = Annotated[str, StringConstraints(max_length=2000)]
Key = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_.\-]{1,64}$")]
CustomKey = Annotated[str, AfterValidator(check_custom_key)]
"""A custom field's name: letters of any script ("Менеджер", "Qeyd"), digits, `_`, `.`, `-`."""
Birthday = Annotated[
    str,
    StringConstraints(max_length=20),
    AfterValidator(lambda text: check_birthday(text, datetime.now(UTC).date())),
]


def _call_window(text: str) -> str:
    """Two times of day that differ, HH:MM-HH:MM (across midnight too: 18:00-09:00), as nurture
    reads it: "25:00-26:00" was taken and then silently replaced by the playbooks' window, and
    "10:00-10:00" held no moment at all."""
    start, dash, end = text.replace(" ", "").partition("-")
    try:
        first, last = time.fromisoformat(start), time.fromisoformat(end)
    except ValueError:
        raise ValueError("must be two times of day, HH:MM-HH:MM (10:00-14:00)") from None
    if not dash or first == last:
        raise ValueError("must start and end at different times, HH:MM-HH:MM (10:00-14:00)")
    return text


CallWindow = Annotated[
    str, StringConstraints(strip_whitespace=True, max_length=20), AfterValidator(_call_window)
]


YesOrNo = Annotated[bool, BeforeValidator(read_yes_or_no)]
YES_OR_NO_HELP = (
    "true or false; text is read in any letter case: yes/no, да/нет, иә/жоқ, bəli/xeyr, hə/yox, "
    "ИСТИНА/ЛОЖЬ (a Russian-locale Excel's TRUE and FALSE), 1/0, on/off. Anything else is a 422 "
    "naming the field."
)


def _stripped(value: Any) -> Any:
    return value.strip() if isinstance(value, str) else value


LeadZone = Annotated[ZoneName, BeforeValidator(_stripped)]
"""A lead's own time zone: refused here when nurture could not open it (it fell back to the
playbooks' zone without a word). Events keep it as plain text, so old ones still decode."""
CustomValue = Annotated[str, StringConstraints(max_length=1000)] | int | float | bool | None

TIMEFRAME_HELP = (
    "When the person plans to buy. Recommended: one of the canonical values a select offers, "
    "`now`, `this_week`, `this_month` (each to its end), `within_3_months`, `later`, `unknown`. Free text is "
    "understood too, in Kazakh, Russian, Azerbaijani and English: words (сейчас, срочно, бүгін, "
    "dərhal, asap), relative phrases (через две недели, 2 аптадан кейін, 2 həftə sonra, next "
    "month, до конца месяца), dates (2027-02-01, 1 февраля, 15.03) and amounts (2 мес, 3w, P2M). "
    "Text nobody understood shows on the lead as a 0-point line `intent.timeframe.not_understood`."
)


class LeadIn(StorableInput):
    """A lead as posted by a form, landing page or integration. Email or phone is required."""

    model_config = ConfigDict(extra="forbid")

    email: Annotated[str, StringConstraints(max_length=320)] | None = None
    phone: Annotated[str, StringConstraints(strip_whitespace=True, max_length=40)] | None = Field(
        None,
        description="The person's phone, kept in E.164 (the person's identity, and where SMS and "
        "messengers go); written without a country code, it is read in the source's region. An office "
        "line's extension at its end, 1-6 digits after `доб`, `добавочный`, `вн`, `внутр`, `внутренний`, "
        "`ішкі`, `əlavə`, `daxili`, `ext`, `extension`, `x` or `#` (a dot or not, any letter case), is "
        "kept apart, as the lead's `phone_extension`, for the rep who calls. Anything else that is no "
        "phone number is a 422 naming `phone`.",
        examples=["+7 701 234 56 78", "8 (727) 250-00-00 вн. 103", "+994 12 404 00 00 əlavə 5"],
    )
    first_name: Short | None = None
    last_name: Short | None = None
    company: Short | None = None
    job_title: Short | None = None
    industry: Short | None = None
    company_size: Short | None = None
    country: Short | None = None
    city: Short | None = None
    timezone: LeadZone | None = Field(
        None,
        description="The person's time zone, an IANA name as the zone database writes it "
        "(`Asia/Almaty`, `Europe/Berlin`, `UTC`; letter case counts): touches are timed in it. "
        "Any other is a 422 naming `timezone`.",
        examples=["Asia/Almaty"],
    )
    language: Short | None = Field(
        None, description="The person's language: kk, ru, az or en. Timeframes are read in it first."
    )
    budget: Annotated[float, BeforeValidator(read_amount)] | None = Field(
        default=None,
        ge=0,
        le=1e12,
        description="A number; text is read as people write an amount: `1 500 000` (spaces or "
        "no-break ones between thousands), `1.500` and `1,500` (1500), `1500000,50`, "
        "`1 500 000,50`, `$1,500.50`, `150 000 ₸` "
        "(a currency's sign or code, ₸ $ ₼ ₽ € руб тг AZN KZT RUB USD EUR, is dropped).",  # noqa: RUF001
        examples=[150000, "1 500 000", "150 000 ₸"],
    )
    timeframe: Short | None = Field(
        None,
        description=TIMEFRAME_HELP,
        examples=["now", "this_week", "within_3_months", "через две недели"],
    )
    need: Long | None = None
    is_decision_maker: YesOrNo | None = Field(None, description=YES_OR_NO_HELP)
    message: Long | None = None
    consent: YesOrNo | None = Field(None, description=YES_OR_NO_HELP)
    preferred_channel: Short | None = None
    birthday: Birthday | None = Field(
        None,
        description="The person's birthday: YYYY-MM-DD, or --MM-DD when the year is not known; "
        "DD.MM.YYYY (or DD/MM/YYYY, DD-MM-YYYY), day first as Excel writes it in Russian, Kazakh and "
        "Azerbaijani locales, is read as that date and kept as YYYY-MM-DD. Customers are greeted on it "
        "(nurture's occasions).",
        examples=["1990-03-22", "22.03.1990", "--02-29"],
    )
    call_window: CallWindow | None = Field(
        None, description="When the person may be called, in their time zone: HH:MM-HH:MM, e.g. 10:00-14:00."
    )
    campaign: Short | None = None
    referred_by: Short | None = None
    utm: dict[Key, Short] = Field(default_factory=dict, max_length=20)
    page_url: Url | None = None
    referrer: Url | None = None
    custom: dict[CustomKey, CustomValue] = Field(
        default_factory=dict,
        max_length=50,
        description="Anything else about the person, by a name of 1-64 letters of any script, digits, "
        "`_`, `.` and `-` (`booth_notes`, `Менеджер`, `Дата_обращения`): text up to 1,000 characters, "
        "a number or a yes/no. A form's other fields and an import's other columns are kept here, a "
        "name's spaces as `_`.",
    )


LEAD_FIELDS = frozenset(LeadIn.model_fields)


class LeadAccepted(BaseModel):
    lead_id: UUID
    status: Literal["accepted", "merged"] = "accepted"


class BatchIn(BaseModel):
    """Each item is read as a LeadIn on its own (unstorable text included), so one bad
    item is refused alone."""

    model_config = ConfigDict(extra="forbid")

    leads: list[dict[str, Any]] = Field(min_length=1, max_length=500)


class ItemError(BaseModel):
    field: str
    reason: str
    type: str = Field(
        "value_error",
        description="What is wrong, for a program to act on whatever the reason's words:"
        " pydantic's error type (missing, string_too_long, ...) or a rule's (email_invalid,"
        " phone_invalid, contact_missing, required_by_source, unstorable_text).",
    )


class BatchItemResult(BaseModel):
    index: int
    status: int = Field(description="202 accepted, or 422 with `errors`.")
    lead_id: UUID | None = None
    outcome: Literal["accepted", "merged"] | None = None
    errors: list[ItemError] = Field(default_factory=list)


class BatchResult(BaseModel):
    accepted: int
    rejected: int
    results: list[BatchItemResult]


class HistoryEntry(BaseModel):
    id: UUID
    kind: str
    type: str
    occurred_at: datetime
    properties: dict[str, Any]


class LeadPublic(BaseModel):
    id: UUID
    source_id: UUID
    email: str | None
    phone: str | None
    attributes: dict[str, Any]
    captured_at: datetime
    updated_at: datetime
    history: list[HistoryEntry] = Field(default_factory=list)


class ImportStarted(BaseModel):
    import_id: UUID
    status: Literal["running"] = "running"
    status_url: str


class RowRejection(BaseModel):
    row: int = Field(description="The row's number among the data rows: 1 is the first after the header.")
    line: int | None = Field(
        description="The line of the file the row starts on, as an editor or a spreadsheet numbers "
        "them: the header row is line 1, and a row whose quoted value runs over several lines starts "
        "on its first. None for rows rejected before lines were kept."
    )
    errors: list[ItemError]


class UnknownHeader(BaseModel):
    header: str = Field(description="A header of the file that names no lead field.")
    kept_as: str | None = Field(
        description="Where its values went: `custom.<name>`, a custom field of each lead named as the "
        "header, its spaces as `_` (`Дата обращения`: `custom.Дата_обращения`); null when they were "
        "not imported (a custom field's name is letters of any script, digits, `_`, `.` and `-`, at "
        "most 64 of them, so `Сумма, ₸` is none; a header that names the same custom field as one "
        "before it, `Дата_обращения` after `Дата обращения`; the honeypot; past the 50 a lead keeps)."
    )
    did_you_mean: str | None = Field(
        description="The lead field it is close to (`emial`: `email`; `Phone Number`: `phone`), if any."
    )


class ImportReport(BaseModel):
    id: UUID
    filename: str | None
    status: Literal["running", "done", "failed", "interrupted"]
    rows_total: int | None = Field(description="Known once the file is counted.")
    rows_done: int
    accepted: int
    merged: int = Field(
        description="Rows of people already known; told to a key with the `history` scope only "
        "(a `capture` key's are counted as accepted)."
    )
    merged_told: bool = Field(
        description="Whether `merged` is told apart from `accepted`: true for a `history` key; false "
        "for a `capture` key, whose `accepted` counts new and known people alike."
    )
    rejected: int
    error: str | None
    started_at: datetime
    finished_at: datetime | None
    unknown_headers: list[UnknownHeader] = Field(
        default_factory=list,
        description="The file's headers that no lead field takes, in its order: rename one to the "
        "field it meant and send the file again (rows already stored merge). Known once the file is read.",
    )
    rejections: list[RowRejection]


class LeadKeysWanted(BaseModel):
    lead_ids: list[UUID] = Field(min_length=1, max_length=1000)


class LeadKeys(BaseModel):
    keys: dict[UUID, str] = Field(
        description="Base64 key of each lead that still exists; an erased lead has none."
    )
