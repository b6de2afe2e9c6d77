"""Groups of values leads bring with any spelling (campaigns, industries): the `max_groups`
largest shown, the rest summed as one overflow group. Its label reads "(other)", yet it is no
value's group: it is marked `overflow`, so a campaign really called "(other)" is a group of its
own, as the leads without a value (null) are apart from a value that reads "None"."""

from enum import Enum
from typing import Any

from sqlalchemy import ColumnElement, and_, case, not_

OTHER = "(other)"  # the overflow group's label
MAX_GROUPS = 50


class Overflow(Enum):
    """The overflow group's key: unequal to every value, whatever the value reads."""

    GROUP = OTHER


OVERFLOW = Overflow.GROUP
Group = str | None | Overflow  # a value, the leads without one (None), or the overflow


def bounded_columns(value: Any, shown: ColumnElement[bool]) -> list[Any]:
    """A row's group as two columns: `key`, its value when `shown` (else null), and `overflow`,
    whether it has a value that is not shown. Group by both and read them with `group_of`."""
    return [
        case((shown, value), else_=None).label("key"),
        and_(value.is_not(None), not_(shown)).label("overflow"),
    ]


def group_of(row: Any) -> Group:
    """The group of a row read with `bounded_columns` (or with a `key` column alone)."""
    mapping = row._mapping
    return OVERFLOW if mapping.get("overflow") else mapping["key"]


def label_of(group: Group) -> str | None:
    return OTHER if group is OVERFLOW else None if group is None else str(group)


def named_first(group: Group) -> tuple[int, str]:
    """Named groups by name, then the leads without a value (null), then the overflow."""
    return (2 if group is OVERFLOW else 1 if group is None else 0, label_of(group) or "")
