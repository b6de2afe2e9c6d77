"""What every model of a client's input shares.

Text PostgreSQL can store: it refuses U+0000 in text and JSON, and a lone surrogate (half
of a UTF-16 pair, which JSON's \\uD800 escapes can produce) is not valid Unicode. Such text
is refused where it comes in, as a 422 naming the field, never a 500 from the database and
never half of a batch.

PATCH bodies: a field left out keeps its value; `null` clears only a field that may be
empty (`Patch.clearable`), anything else sent as null is a 422, not a NULL in a column that
cannot hold one."""

import re
from typing import Any, ClassVar

from pydantic import BaseModel, ValidationInfo, field_validator

_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")


def unstorable(text: str) -> str | None:
    """Why `text` cannot be stored, or None when it can."""
    found = _UNSTORABLE.search(text)
    if found is None:
        return None
    if found.group() == "\x00":
        return "contains U+0000 (a NUL character), which cannot be stored"
    return f"contains a lone surrogate U+{ord(found.group()):04X}, which is not valid Unicode text"


def find_unstorable(value: Any, where: str) -> tuple[str, str] | None:
    """The first text inside `value` (a string, or mappings and lists of them) that cannot be
    stored, as (where it is, why), e.g. ("custom.note", "contains U+0000 ...")."""
    if isinstance(value, str):
        reason = unstorable(value)
        return (where, reason) if reason else None
    if isinstance(value, dict):
        for key, item in value.items():
            found = find_unstorable(key, where) or find_unstorable(item, f"{where}.{key}")
            if found:
                return found
    elif isinstance(value, list | tuple | set | frozenset):
        for index, item in enumerate(value):
            if found := find_unstorable(item, f"{where}.{index}"):
                return found
    return None


class StorableInput(BaseModel):
    """Base of every model a client's input is read into: each field's text (nested in
    mappings and lists too) must be storable, or validation fails naming the field."""

    @field_validator("*", mode="after")
    @classmethod
    def _storable(cls, value: Any, info: ValidationInfo) -> Any:
        if value is None or isinstance(value, bool | int | float | BaseModel):
            return value
        found = find_unstorable(value, info.field_name or "value")
        if found:
            where, reason = found
            raise ValueError(reason if where == info.field_name else f"{where} {reason}")
        return value


class Patch(StorableInput):
    """Base of a PATCH body: every field is optional; `clearable` names those that null empties."""

    clearable: ClassVar[frozenset[str]] = frozenset()

    @field_validator("*", mode="before")
    @classmethod
    def _null_only_where_clearable(cls, value: Any, info: ValidationInfo) -> Any:
        if value is None and info.field_name not in cls.clearable:
            raise ValueError("cannot be null: leave the field out to keep its value")
        return value
