"""`column = ANY(array)` in place of `column IN (...)`: one statement text whatever the count."""

from collections.abc import Iterable
from typing import Any

from sqlalchemy import ColumnElement, any_, literal
from sqlalchemy.dialects.postgresql import ARRAY


def among(column: Any, values: Iterable[Any]) -> ColumnElement[bool]:
    """`column = ANY($n)`, the values bound as one array. An IN list is rendered for its count
    (`IN ($1, $2, …)`), so each batch size is a statement text of its own, prepared again on the
    server when the connection's cache of prepared statements (100) has let it go: a consumer's
    batches, which vary in size, prepared their statements at almost every run."""
    return column == any_(literal(list(values), ARRAY(column.type)))
