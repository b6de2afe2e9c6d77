"""Keyset pages for list endpoints: `limit` and an opaque `cursor`. The body stays a plain
list; while more follow, the answer carries `Link: <…>; rel="next"` (RFC 8288) naming the
next page. A page is found by an index, however many rows come before it."""

import base64
import binascii
import json
from collections.abc import Callable, Sequence
from datetime import date, datetime
from typing import Annotated, Any, TypeVar

from fastapi import Query, Request, Response
from sqlalchemy import ColumnElement, tuple_

from shared.http import InvalidInput

Limit = Annotated[int, Query(ge=1, le=1000, description="At most this many items on a page.")]
Cursor = Annotated[str | None, Query(max_length=400, description="From a `Link: rel=next` header.")]
Item = TypeVar("Item")
Query_ = TypeVar("Query_", bound=Any)
_READ: dict[type, Callable[[str], Any]] = {datetime: datetime.fromisoformat, date: date.fromisoformat}


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
    first page. A cursor this API did not give out is a 422 naming it."""
    if cursor is None:
        return None
    try:
        parts = json.loads(base64.urlsafe_b64decode(cursor.encode()))
        kinds = [column.type.python_type for column in columns]
        if not isinstance(parts, list) or len(parts) != len(kinds):
            raise ValueError("another shape")
        values = [_READ.get(kind, kind)(part) for kind, part in zip(kinds, parts, strict=True)]
    except (ValueError, TypeError, binascii.Error, UnicodeDecodeError) as error:
        raise InvalidInput([("cursor", "not a cursor this API gave out")]) from error
    return tuple_(*columns) < tuple_(*values) if newest_first else tuple_(*columns) > tuple_(*values)


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
    parts = [value.isoformat() if isinstance(value, date) else str(value) for value in key(items[-1])]
    cursor = base64.urlsafe_b64encode(json.dumps(parts).encode()).decode()
    response.headers["Link"] = f'<{request.url.include_query_params(cursor=cursor, limit=limit)}>; rel="next"'
    return items
