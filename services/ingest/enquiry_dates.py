# ruff: noqa: RUF001  (Cyrillic in the names is the point here)
"""When an imported row's person enquired: the column that says so ("Date", "Дата обращения",
"Müraciət tarixi", "Өтініш күні"), and its value read as people and spreadsheets write a date
(2026-11-14, 14.11.2026, 14/11/2026, an Excel date cell's serial number, each with an optional
time). A date without an offset is in the import's time zone. Pure."""

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta, tzinfo

from services.ingest.field_names import field_named, plain_name
from services.ingest.history import AHEAD, TOO_FAR_AHEAD

NAMES = frozenset(
    {
        "date",
        "enquiry_date",
        "inquiry_date",
        "date_of_enquiry",
        "date_of_inquiry",
        "enquired_at",
        "request_date",
        "lead_date",
        "дата",
        "дата_обращения",
        "дата_и_время_обращения",
        "дата_заявки",
        "дата_запроса",
        "өтініш_күні",
        "өтініш_уақыты",
        "өтініш_берген_күні",
        "tarix",
        "müraciət_tarixi",
        "muraciet_tarixi",
        "müraciət_vaxtı",
        "sorğu_tarixi",
    }
)
"""The enquiry date's column, as `field_names.plain_name` writes it."""

UNREADABLE = (
    "is not a date: write it 2026-11-14 or 14.11.2026 (day first; or 14/11/2026), with a time"
    " if you have it (14.11.2026 10:30), or leave it as an Excel date cell"
)
_ISO = re.compile(r"^(\d{4})-(\d{1,2})-(\d{1,2})(?:[ T](.+))?$")
_DAY_FIRST = re.compile(r"^(\d{1,2})([./-])(\d{1,2})\2(\d{4})(?:,?\s+(.+))?$")
_TIME = re.compile(r"^(\d{1,2}):(\d{2})(?::(\d{2})(?:\.\d+)?)?\s*(Z|[+-]\d{2}:?\d{2})?$", re.IGNORECASE)
_SERIAL = re.compile(r"^(\d{5,7})(?:[.,](\d+))?$")
EXCEL_EPOCH = datetime(1899, 12, 30)  # serial 1 is 1900-01-01 (Excel counts a 29 Feb 1900)
# Serials taken: 10000 (1927-05-18) to 9999-12-31. Fewer digits are no date cell: "2026" is a year.
EXCEL_FIRST, EXCEL_LAST = 10_000, 2_958_465


def is_enquiry_date(name: str) -> bool:
    """Whether a column of this name says when the person enquired (a lead field's name, such
    as a birthday's "Дата рождения", is that field)."""
    return field_named(name) is None and plain_name(name) in NAMES


def enquiry_column(header: Iterable[str]) -> str | None:
    """The column of the header row that dates each row's enquiry: the first naming one (any
    other stays a custom field)."""
    return next((name for name in header if name and is_enquiry_date(name)), None)


def read_date(text: str, zone: tzinfo) -> datetime:
    """The moment `text` names, in UTC; without an offset it is in `zone`, a date alone the
    start of its day. ValueError (UNREADABLE) for anything else."""
    value = text.strip()
    try:
        if serial := _SERIAL.fullmatch(value):
            return _from_serial(serial.group(1), serial.group(2) or "", zone)
        if iso := _ISO.fullmatch(value):
            year, month, day, clock = iso.groups()
        elif day_first := _DAY_FIRST.fullmatch(value):
            day, _, month, year, clock = day_first.groups()
        else:
            raise ValueError(UNREADABLE)
        moment = datetime.combine(date(int(year), int(month), int(day)), time())
        return _at(moment, clock, zone)
    except (ValueError, OverflowError):
        raise ValueError(UNREADABLE) from None


def _from_serial(days: str, fraction: str, zone: tzinfo) -> datetime:
    """An Excel date cell exported as its number: days since 1899-12-30, the time a fraction."""
    if not EXCEL_FIRST <= int(days) <= EXCEL_LAST:
        raise ValueError(UNREADABLE)
    part = float(f"0.{fraction}") if fraction else 0.0
    moment = EXCEL_EPOCH + timedelta(days=int(days), seconds=round(part * 86400))
    return moment.replace(tzinfo=zone).astimezone(UTC)


def _at(day: datetime, clock: str | None, zone: tzinfo) -> datetime:
    if clock is None:
        return day.replace(tzinfo=zone).astimezone(UTC)
    found = _TIME.fullmatch(clock.strip())
    if found is None:
        raise ValueError(UNREADABLE)
    hours, minutes, seconds, offset = found.groups()
    moment = day.replace(hour=int(hours), minute=int(minutes), second=int(seconds or 0))
    if offset is None:
        return moment.replace(tzinfo=zone).astimezone(UTC)
    sign = "+00:00" if offset.upper() == "Z" else offset
    return datetime.fromisoformat(f"{moment.isoformat()}{sign}").astimezone(UTC)


@dataclass(frozen=True)
class EnquiryDates:
    """How an import dates its rows: the column (None: every row is dated by its import), the
    time zone of a date written without an offset, and the clock no date may be ahead of by
    more than `history.AHEAD`."""

    column: str | None = None
    zone: tzinfo = UTC
    clock: Callable[[], datetime] = lambda: datetime.now(UTC)

    def of(self, fields: list[tuple[str, str]]) -> datetime | None:
        """The row's enquiry date; None when it gives none. ValueError saying why it is refused."""
        if self.column is None:
            return None
        text = next((value for name, value in fields if name == self.column), "")
        if not text.strip():
            return None
        moment = read_date(text, self.zone)
        if moment > self.clock() + AHEAD:
            raise ValueError(TOO_FAR_AHEAD)
        return moment
