"""Keyset pages for list endpoints: `limit` and an opaque `cursor`. The body stays a plain
list; while more follow, the answer carries `Link: <…>; rel="next"` (RFC 8288) naming the
next page. A page is found by an index, however many rows come before it."""

import base64
import binascii
import json
from collections.abc import Callable, Sequence
from datetime import UTC, date, datetime
from typing import Annotated, Any, TypeVar
from uuid import UUID

from fastapi import Query, Request, Response
from sqlalchemy import BigInteger, ColumnElement, SmallInteger, tuple_

from shared.http import InvalidInput

Limit = Annotated[int, Query(ge=1, le=1000, description="At most this many items on a page.")]
Cursor = Annotated[str | None, Query(max_length=400, description="From a `Link: rel=next` header.")]
Item = TypeVar("Item")
Query_ = TypeVar("Query_", bound=Any)
NOT_A_CURSOR = "not a cursor this list gave"


def keyset(
    query: Query_, columns: Sequence[Any], cursor: str | None, limit: int, *, newest_first: bool = False
) -> Query_:
    """`query` for one page: past the cursor, in the order of `columns` (unique together;
    descending when `newest_first`), one more row than `limit` (it says more follow; `page`
    drops it)."""
    condition = after(columns, cursor, newest_first=newest_first)
    if condition is not None:
        query = query.where(condition)
    order = [column.desc() for column in columns] if newest_first else list(columns)
    return query.order_by(*order).limit(limit + 1)


def after(
    columns: Sequence[Any], cursor: str | None, *, newest_first: bool = False
) -> ColumnElement[bool] | None:
    """Rows past the cursor's in the order of `columns` (unique together), or None for the
    first page. A cursor this list did not give out is a 422 naming it."""
    if cursor is None:
        return None
    try:
        parts = json.loads(base64.urlsafe_b64decode(cursor.encode()))
        if not isinstance(parts, list) or len(parts) != len(columns):
            raise ValueError("another shape")
        values = [value_of(column, part) for column, part in zip(columns, parts, strict=True)]
        if cursor_of(values) != cursor:  # " 40", "+40", "٤٠", a uuid in braces: not as given
            raise ValueError("not in the form the list gives")
    except (ValueError, TypeError, binascii.Error, UnicodeDecodeError) as error:
        raise InvalidInput([("cursor", NOT_A_CURSOR)]) from error
    return tuple_(*columns) < tuple_(*values) if newest_first else tuple_(*columns) > tuple_(*values)


def value_of(column: Any, part: object) -> Any:
    """The value of `column` that a cursor's `part` (a string `page` wrote) stands for, or a
    ValueError when the column could not hold it: a cursor is client input, and a value out of
    the column's range would fail in PostgreSQL (a 500) rather than find no rows."""
    if not isinstance(part, str):
        raise ValueError("a cursor's parts are strings")
    kind = column.type.python_type
    if kind is datetime:
        return _moment(part, aware=bool(getattr(column.type, "timezone", False)))
    if kind is date:
        return date.fromisoformat(part)  # years 1-9999: PostgreSQL's dates hold them all
    if kind is int:
        bits = (
            64 if isinstance(column.type, BigInteger) else 16 if isinstance(column.type, SmallInteger) else 32
        )
        number = int(part)
        if not -(2 ** (bits - 1)) <= number < 2 ** (bits - 1):
            raise ValueError(f"out of int{bits // 8}")
        return number
    if kind is UUID:
        return UUID(part)
    raise NotImplementedError(f"no cursor reads a {kind.__name__} column")  # a list's order, not input


def _moment(part: str, *, aware: bool) -> datetime:
    """A timestamp as `page` writes it: with an offset for a timestamptz column (and one that is
    still a year 1-9999 moment in UTC, which is how it is sent), without for a timestamp."""
    moment = datetime.fromisoformat(part)
    if (moment.tzinfo is not None) != aware:
        raise ValueError("a timestamp with or without an offset, unlike the list's")
    if aware:
        try:
            moment.astimezone(UTC)
        except OverflowError as error:
            raise ValueError("beyond the years 1-9999 in UTC") from error
    return moment


def cursor_of(values: Sequence[object]) -> str:
    """The cursor of the page after the row with these values of the order's columns."""
    parts = [value.isoformat() if isinstance(value, date) else str(value) for value in values]
    return base64.urlsafe_b64encode(json.dumps(parts).encode()).decode()


def page(
    items: list[Item],
    limit: int,
    request: Request,
    response: Response,
    key: Callable[[Item], Sequence[object]],
) -> list[Item]:
    """The first `limit` of `items` (fetched `limit + 1`: one more says more follow), and the
    next page's link when they do. `key` gives an item's values of the order's columns."""
    if len(items) <= limit:
        return items
    items = items[:limit]
    cursor = cursor_of(key(items[-1]))
    response.headers["Link"] = f'<{request.url.include_query_params(cursor=cursor, limit=limit)}>; rel="next"'
    return items
