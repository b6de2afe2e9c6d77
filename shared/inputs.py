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

from pydantic import BaseModel, ConfigDict, ValidationError, ValidationInfo, field_validator, model_validator
from pydantic_core import InitErrorDetails, PydanticCustomError

_SURROGATE = re.compile("[\ud800-\udfff]")
_CONTAINERS = (dict, list, tuple)
Path = tuple[str | int, ...]


def unstorable(text: str) -> str | None:
    """Why `text` cannot be stored, or None when it can."""
    if "\x00" in text:
        return "contains U+0000 (a NUL character), which cannot be stored"
    if text.isascii():  # the common case, and no surrogate can hide in it
        return None
    found = _SURROGATE.search(text)
    return (
        f"contains a lone surrogate U+{ord(found.group()):04X}, which is not valid Unicode text"
        if found
        else None
    )


def unstorable_texts(value: Any, path: Path = ()) -> list[tuple[Path, str]]:
    """Every text inside `value` (a string, or mappings and lists of them, keys included)
    that cannot be stored, as (where it is, why). One pass; nothing is built when all is well."""
    if isinstance(value, str):
        reason = unstorable(value)
        return [(path, reason)] if reason else []
    found: list[tuple[Path, str]] = []
    items = (
        value.items()
        if isinstance(value, dict)
        else enumerate(value)
        if isinstance(value, list | tuple)
        else ()
    )
    for key, item in items:
        if isinstance(key, str) and (reason := unstorable(key)):
            found.append((path, f"a key {reason}"))
        if isinstance(item, str):
            if reason := unstorable(item):
                found.append(((*path, key), reason))
        elif isinstance(item, _CONTAINERS):
            found += unstorable_texts(item, (*path, key))
    return found


UNSTORABLE = "unstorable_text"  # the error type of text PostgreSQL cannot store


def find_unstorable(value: Any, where: str) -> tuple[str, str] | None:
    """The first text inside `value` that cannot be stored, as (dotted path under `where`,
    why), e.g. ("custom.note", "contains U+0000 ...")."""
    for path, reason in unstorable_texts(value):
        return ".".join([where, *map(str, path)]), reason
    return None


class StorableInput(BaseModel):
    """Base of every model a client's input is read into: all of its text (nested in
    mappings and lists too) must be storable, or validation fails naming each place. One
    scan of the input per model, before its fields are validated. Its numbers are finite: the
    JSON parsers here take NaN and Infinity, which no bound refuses by name and JSON columns
    cannot store."""

    model_config = ConfigDict(allow_inf_nan=False)

    @model_validator(mode="before")
    @classmethod
    def _storable(cls, data: Any) -> Any:
        if isinstance(data, dict) and (found := unstorable_texts(data)):
            errors = [
                InitErrorDetails(
                    type=PydanticCustomError(UNSTORABLE, "{reason}", {"reason": reason}),
                    loc=path,
                    input=None,
                )
                for path, reason in found
            ]
            raise ValidationError.from_exception_data(cls.__name__, errors)
        return data


class Patch(StorableInput):
    """Base of a PATCH body: every field is optional; `clearable` names those that null empties."""

    clearable: ClassVar[frozenset[str]] = frozenset()

    @field_validator("*", mode="before")
    @classmethod
    def _null_only_where_clearable(cls, value: Any, info: ValidationInfo) -> Any:
        if value is None and info.field_name not in cls.clearable:
            raise ValueError("cannot be null: leave the field out to keep its value")
        return value
