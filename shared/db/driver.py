"""Statements run on the asyncpg connection under a session: compiled once, values bound as arrays."""

from collections.abc import Sequence
from functools import lru_cache
from typing import Any

import asyncpg
from sqlalchemy import JSON, Table
from sqlalchemy.dialects import postgresql
from sqlalchemy.dialects.postgresql import asyncpg as asyncpg_dialect
from sqlmodel.ext.asyncio.session import AsyncSession

from shared.db.engine import json_text


async def driver_connection(session: AsyncSession) -> asyncpg.Connection:
    """The asyncpg connection under the session, inside the session's transaction: for the
    plumbing statements every consumer batch runs (the inbox, tombstones, the doorbell). Through
    the session each costs about 0.3 ms of CPU here, on the driver about 0.1 ms."""
    connection = await session.connection()
    raw = await connection.get_raw_connection()
    adapted: Any = raw.dbapi_connection  # SQLAlchemy's AsyncAdapt_asyncpg_connection
    if not adapted._started:
        # SQLAlchemy's asyncpg adapter opens the transaction lazily, at its first statement:
        # opened here as it would be (a `SELECT 1` through the session cost ~0.3 ms of CPU).
        # The adapter's own attributes: SQLAlchemy is pinned (pyproject.toml), and every
        # consumer test runs through here.
        await adapted._start_transaction()
    driver: asyncpg.Connection = raw.driver_connection
    return driver


async def upsert(
    session: AsyncSession, table: Table, key: Sequence[str], rows: Sequence[dict[str, Any]]
) -> None:
    """INSERT each row, or UPDATE the columns it names; the rows share their column names and
    no two share a key. One statement for all rows, their values bound as one array per column:
    PostgreSQL plans and runs it once, however many rows (an executemany runs it per row)."""
    if not rows:
        return
    columns = tuple(rows[0])
    as_json = {c for c in columns if isinstance(table.c[c].type, JSON)}
    arrays = [[json_text(row[c]) if c in as_json else row[c] for row in rows] for c in columns]
    connection = await driver_connection(session)
    await connection.execute(upsert_from_arrays(table, tuple(key), columns), *arrays)


@lru_cache(maxsize=256)
def upsert_from_arrays(table: Table, key: tuple[str, ...], columns: tuple[str, ...], first: int = 1) -> str:
    """`insert_from_arrays`, each row whose `key` is taken updating the columns it names instead."""
    updated = ", ".join(f'"{c}" = excluded."{c}"' for c in columns if c not in key)
    conflict = ", ".join(f'"{c}"' for c in key)
    return f"{insert_from_arrays(table, columns, first)} ON CONFLICT ({conflict}) DO UPDATE SET {updated}"


async def execute_compiled_once(session: AsyncSession, statement: Any, params: dict[str, Any]) -> None:
    """Run `statement` (built once and kept, by an `lru_cache` say) with `params` on the
    session's connection, compiled on its first run only. SQLAlchemy compiles PostgreSQL's
    INSERT ... ON CONFLICT again at every execution (it takes no part in its statement cache):
    a sixth of metrics' CPU at a steady rate went there. The values go to the driver as they
    are (no type's bind processing): they must be what asyncpg takes (aware datetimes, UUIDs)."""
    sql, order, defaults = _compiled(statement)
    values = defaults | params
    connection = await driver_connection(session)
    await connection.execute(sql, *(values[name] for name in order))


@lru_cache(maxsize=512)
def _compiled(statement: Any) -> tuple[str, tuple[str, ...], dict[str, Any]]:
    compiled = statement.compile(dialect=asyncpg_dialect.dialect())
    order = tuple(compiled.positiontup or ())
    # The values the statement holds itself (a literal, say), then columns filled by their default.
    binds = compiled.binds
    fixed = {name: binds[name].effective_value for name in order if not binds[name].required}
    for column in getattr(compiled, "insert_prefetch", ()):
        if column.default is None or not column.default.is_scalar:
            raise ValueError(f"{column} has no fixed default to compile in")
        fixed[column.key] = column.default.arg
    return compiled.string, order, fixed


def insert_from_arrays(table: Table, columns: tuple[str, ...], first: int) -> str:
    """INSERT INTO table (columns) from one array per column, from parameter `first` on, in the
    rows' order (the outbox's ids, which set the order of publication, are drawn in it)."""
    dialect = postgresql.dialect()
    arrays = ", ".join(
        f"${i}::{table.c[c].type.compile(dialect=dialect)}[]" for i, c in enumerate(columns, start=first)
    )
    names = ", ".join(f'"{c}"' for c in columns)
    # names from the table's metadata; the values are bound
    rows = f"unnest({arrays}) WITH ORDINALITY AS v({names}, _position) ORDER BY _position"
    return f'INSERT INTO "{table.name}" ({names}) SELECT {names} FROM {rows}'  # noqa: S608
