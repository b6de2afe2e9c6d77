"""Work queued in a transaction (rows, updates, notifications, hand-offs), written as it commits."""

from functools import lru_cache
from typing import Any

import asyncpg
from sqlalchemy import JSON, Table, insert
from sqlalchemy.dialects import postgresql
from sqlmodel.ext.asyncio.session import AsyncSession

from shared.db.driver import driver_connection, insert_from_arrays, upsert_from_arrays
from shared.db.engine import json_text

_DEFERRED = "leadflow.deferred_inserts"
WRITTEN = "leadflow.tables_written"
_NOTIFIES = "leadflow.deferred_notifies"
KEPT = "leadflow.kept"
HANDED = "leadflow.handed"
_UPDATES = "leadflow.deferred_updates"
_UPSERTS = "leadflow.deferred_upserts"


def kept(session: AsyncSession) -> dict[str, Any]:
    """What the process keeps between transactions (`Database.kept`: a cache that knows when
    to forget), from inside one; a session of no `Database.transaction` keeps nothing past itself."""
    found: dict[str, Any] = session.info.setdefault(KEPT, {})
    return found


def hand_after_commit(session: AsyncSession, to: str, item: Any) -> None:
    """Give `item` to what takes `to` in this process (`Database.on_handed`) once the
    transaction has committed; if it rolls back, to no one."""
    session.info.setdefault(HANDED, {}).setdefault(to, []).append(item)


def defer_insert(session: AsyncSession, table: Table, row: dict[str, Any]) -> None:
    """Queue a row; every row queued in a transaction is written in one INSERT per table
    just before it commits (cheaper than one statement per row)."""
    session.info.setdefault(_DEFERRED, {}).setdefault(table, []).append(row)


def defer_update(session: AsyncSession, table: Table, key: str, row: dict[str, Any]) -> None:
    """Queue an update: the row of `table` whose `key` column is `row[key]` takes the other
    values in `row`, written with the queued inserts, in their statement (no round trip of its
    own). The last queued for a row wins; it sees no row the queued inserts make."""
    session.info.setdefault(_UPDATES, {}).setdefault((table, key), {})[row[key]] = row


def defer_upsert(session: AsyncSession, table: Table, key: tuple[str, ...], row: dict[str, Any]) -> None:
    """Queue an upsert (`shared.db.upsert`: INSERT the row, or UPDATE the columns it names where
    one has its `key`), written with the queued inserts, in their statement: no round trip of
    its own (at a trickle of one event a transaction, scoring's own statement for its one lead
    cost as much CPU as deciding it). The last queued for a key wins; the rows are written in
    the order their keys were first queued (an order of locks: see `services.scoring.standings`).
    Every row queued for a table names the same columns."""
    by_key = session.info.setdefault(_UPSERTS, {}).setdefault((table, key), {})
    by_key[tuple(row[c] for c in key)] = row


COPY_FROM_ROWS = 100
"""A table's queued rows go in one COPY from this many on (two round trips to the server, cheap
per row). Tables with fewer are all written by one INSERT statement, from one array per column."""


def defer_notify(session: AsyncSession, channel: str, payload: str) -> None:
    """Queue a NOTIFY, sent with the queued rows (listeners hear it once the transaction commits)."""
    session.info.setdefault(_NOTIFIES, []).append((channel, payload))


_NOTIFY_FROM = (
    "SELECT pg_notify(channel, payload) FROM unnest(${}::text[], ${}::text[]) AS n(channel, payload)"
)
_NOTIFY = _NOTIFY_FROM.format(1, 2)


async def write_deferred(session: AsyncSession) -> set[str]:
    """Write the queued rows, and send the queued notifications; returns the names of the
    tables written (by this call: the transaction keeps all it wrote, for the callbacks at its
    commit)."""
    written = session.info.pop(_DEFERRED, {})
    updates: dict[tuple[Table, str], dict[Any, dict[str, Any]]] = session.info.pop(_UPDATES, {})
    upserts: dict[tuple[Table, tuple[str, ...]], dict[Any, dict[str, Any]]] = session.info.pop(_UPSERTS, {})
    notifies: list[tuple[str, str]] = session.info.pop(_NOTIFIES, [])
    said = [list(column) for column in zip(*notifies, strict=True)] if notifies else []
    if not written and not updates and not upserts:
        if said:
            await (await driver_connection(session)).execute(_NOTIFY, *said)
        return set()
    tables = {table.name for table in written} | {table.name for table, _ in upserts}
    session.info.setdefault(WRITTEN, set()).update(tables)
    connection = await driver_connection(session)
    few = await _insert_many(session, connection, written)
    few += _updates_of(updates) + _updates_of(upserts)
    if few:  # the notifications ride along: no round trip of their own
        statement = _writes_from_arrays(
            tuple((table, columns, key) for table, columns, key, _ in few), bool(said)
        )
        arrays = [column for *_, records in few for column in zip(*records, strict=True)]
        await connection.execute(statement, *arrays, *said)
    elif said:
        await connection.execute(_NOTIFY, *said)
    return tables


_Key = str | tuple[str, ...] | None
_Write = tuple[Table, tuple[str, ...], _Key, list[tuple[Any, ...]]]
"""A table, its columns, the key column of an update (a tuple of them: an upsert; None: an
insert), and the rows' values."""


async def _insert_many(
    session: AsyncSession, connection: asyncpg.Connection, written: dict[Table, list[dict[str, Any]]]
) -> list[_Write]:
    """Write each table's queued rows that differ in shape (a plain INSERT) or are many (a
    COPY); returns the other tables' rows, for the one statement from arrays."""
    few: list[_Write] = []
    for table, rows in written.items():
        columns = list(rows[0])
        if any(len(row) != len(columns) or row.keys() != rows[0].keys() for row in rows):
            await session.execute(insert(table), rows)  # rows that differ in shape: a plain INSERT
            continue
        records = _records(table, columns, rows)
        if len(records) >= COPY_FROM_ROWS:
            await connection.copy_records_to_table(table.name, records=records, columns=columns)
        else:
            few.append((table, tuple(columns), None, records))
    return few


def _updates_of(updates: dict[tuple[Table, Any], dict[Any, dict[str, Any]]]) -> list[_Write]:
    """The queued updates (or upserts), each table's in the shape of one write from arrays."""
    few: list[_Write] = []
    for (table, key), by_key in updates.items():
        rows = list(by_key.values())
        columns = list(rows[0])
        if any(row.keys() != rows[0].keys() for row in rows):
            raise ValueError(f"updates of {table.name} queued in one transaction set different columns")
        few.append((table, tuple(columns), key, _records(table, columns, rows)))
    return few


def _records(table: Table, columns: list[str], rows: list[dict[str, Any]]) -> list[tuple[Any, ...]]:
    as_json = {c for c in columns if isinstance(table.c[c].type, JSON)}
    return [tuple(json_text(row[c]) if c in as_json else row[c] for c in columns) for row in rows]


@lru_cache(maxsize=256)
def _writes_from_arrays(
    shapes: tuple[tuple[Table, tuple[str, ...], _Key], ...], notifying: bool = False
) -> str:
    """One statement writing each table, its columns' values bound as arrays (an INSERT, an
    UPDATE by the `key` column where one is named, an upsert on a tuple of them): the last
    write is the statement, the others run as its WITH clauses. `notifying`: the statement is
    the NOTIFYs of the two arrays bound after the columns', every write one of its WITHs."""
    inserts, first = [], 1
    for table, columns, key in shapes:
        if key is None:
            inserts.append(insert_from_arrays(table, columns, first))
        elif isinstance(key, tuple):
            inserts.append(upsert_from_arrays(table, key, columns, first))
        else:
            inserts.append(_update_from_arrays(table, columns, key, first))
        first += len(columns)
    if notifying:  # a WITH that changes no data runs only if read: so the NOTIFYs are the statement
        notify = _NOTIFY_FROM.format(first, first + 1)
        inserts.append(f"SELECT count(*) FROM ({notify}) AS rung")  # noqa: S608 (constants; values bound)
    *others, last = inserts
    if not others:
        return last
    return "WITH " + ", ".join(f"w{i} AS ({sql})" for i, sql in enumerate(others)) + " " + last


def _update_from_arrays(table: Table, columns: tuple[str, ...], key: str, first: int) -> str:
    """UPDATE table, each row whose `key` is in that column's array taking the other columns'
    values at the same place (one row per key: `defer_update` keeps the last)."""
    dialect = postgresql.dialect()
    arrays = ", ".join(
        f"${i}::{table.c[c].type.compile(dialect=dialect)}[]" for i, c in enumerate(columns, start=first)
    )
    names = ", ".join(f'"{c}"' for c in columns)
    sets = ", ".join(f'"{c}" = v."{c}"' for c in columns if c != key)
    # names from the table's metadata; the values are bound
    return f'UPDATE "{table.name}" AS t SET {sets} FROM unnest({arrays}) AS v({names}) WHERE t."{key}" = v."{key}"'  # noqa: S608, E501
