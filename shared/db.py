"""Async engine and transactions for one service schema (set as the connection's search_path)."""

import json
import logging
import os
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from functools import lru_cache
from pathlib import Path
from typing import Any

import asyncpg
from sqlalchemy import JSON, Table, event, insert, make_url, text
from sqlalchemy.dialects import postgresql
from sqlalchemy.dialects.postgresql import asyncpg as asyncpg_dialect
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker, create_async_engine
from sqlmodel.ext.asyncio.session import AsyncSession

from shared.faults import LOST_CONNECTION_ERRORS, caused_by

log = logging.getLogger(__name__)


def _server_settings(schema: str) -> dict[str, str]:
    """Connections see `schema` first, so table names stay unqualified."""
    return {"search_path": schema, "application_name": f"leadflow-{schema}"}


class EncodedJson(str):
    """A JSON document already encoded (by pydantic's `model_dump_json`, say): written to a
    JSON column as it is, not encoded again."""


def _encode_json(value: Any) -> str:
    return value if isinstance(value, EncodedJson) else json.dumps(value)


def create_engine(url: str, schema: str, pool_size: int = 10, durable: bool = True) -> AsyncEngine:
    """The pool of a service's schema. Not `durable`: its connections' commits return before
    their records reach the disk (see `Database.transaction`)."""
    settings = _server_settings(schema) | ({} if durable else {"synchronous_commit": "off"})
    engine = create_async_engine(
        url,
        json_serializer=_encode_json,
        pool_size=pool_size,
        max_overflow=pool_size,
        pool_timeout=5,
        hide_parameters=True,  # an error's text never quotes a row's values (emails, phones)
        connect_args={"timeout": 5, "command_timeout": 30, "server_settings": settings},
    )
    event.listen(engine.sync_engine, "handle_error", _discard_lost_connections)
    event.listen(engine.sync_engine, "connect", _backend_yields_alike)
    return engine


def _backend_yields_alike(dbapi_connection: Any, _: object) -> None:
    yield_alike(dbapi_connection.driver_connection.get_server_pid())


def yield_alike(backend_pid: int) -> None:
    """A process niced to yield the CPU (`leadflow dev`'s background parts: metrics, nurture's
    follow-up) has its PostgreSQL backend yield alike: the backend's work is its work, and at
    nice 0 it competed with a hot lead's. Only a backend of a PostgreSQL started beside this
    process, by the same parent (the dev stack's own), is touched: a server elsewhere, or in a
    container whose process ids mean other processes here, is left alone."""
    niceness = os.getpriority(os.PRIO_PROCESS, 0)
    if niceness <= 0:
        return
    try:
        postmaster = _parent_of(backend_pid)
        if _parent_of(postmaster) != os.getppid() or Path(_command_of(postmaster)).name != "postgres":
            return
        if os.getpriority(os.PRIO_PROCESS, backend_pid) < niceness:
            os.setpriority(os.PRIO_PROCESS, backend_pid, niceness)
    except (OSError, ValueError) as error:  # not Linux, gone, not ours to change
        log.debug("backend %d keeps its priority: %r", backend_pid, error)


def _parent_of(pid: int) -> int:
    stat = Path(f"/proc/{pid}/stat").read_text()
    return int(stat[stat.rindex(")") + 2 :].split()[1])  # after the name: state, then ppid


def _command_of(pid: int) -> str:
    return Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")[0].decode(errors="replace")


def _discard_lost_connections(context: Any) -> None:
    """SQLAlchemy counts an asyncpg connection as lost only once its socket is closed. When
    the server shuts down mid-statement the error can arrive first, leaving a connection
    whose protocol is stuck mid-operation; pooled again, it would fail every later
    request. Such connections (and the pool's older ones) are discarded instead."""
    if caused_by(context.original_exception, LOST_CONNECTION_ERRORS):
        context.is_disconnect = True


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
    arrays = [[_json(row[c]) if c in as_json else row[c] for row in rows] for c in columns]
    connection = await driver_connection(session)
    await connection.execute(_upsert_from_arrays(table, tuple(key), columns), *arrays)


@lru_cache(maxsize=256)
def _upsert_from_arrays(table: Table, key: tuple[str, ...], columns: tuple[str, ...]) -> str:
    updated = ", ".join(f'"{c}" = excluded."{c}"' for c in columns if c not in key)
    conflict = ", ".join(f'"{c}"' for c in key)
    return f"{_insert_from_arrays(table, columns, 1)} ON CONFLICT ({conflict}) DO UPDATE SET {updated}"


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


_DEFERRED = "leadflow.deferred_inserts"
_WRITTEN = "leadflow.tables_written"
_NOTIFIES = "leadflow.deferred_notifies"
_KEPT = "leadflow.kept"
_HANDED = "leadflow.handed"
_UPDATES = "leadflow.deferred_updates"


def kept(session: AsyncSession) -> dict[str, Any]:
    """What the process keeps between transactions (`Database.kept`: a cache that knows when
    to forget), from inside one; a session of no `Database.transaction` keeps nothing past itself."""
    found: dict[str, Any] = session.info.setdefault(_KEPT, {})
    return found


def hand_after_commit(session: AsyncSession, to: str, item: Any) -> None:
    """Give `item` to what takes `to` in this process (`Database.on_handed`) once the
    transaction has committed; if it rolls back, to no one."""
    session.info.setdefault(_HANDED, {}).setdefault(to, []).append(item)


def defer_insert(session: AsyncSession, table: Table, row: dict[str, Any]) -> None:
    """Queue a row; every row queued in a transaction is written in one INSERT per table
    just before it commits (cheaper than one statement per row)."""
    session.info.setdefault(_DEFERRED, {}).setdefault(table, []).append(row)


def defer_update(session: AsyncSession, table: Table, key: str, row: dict[str, Any]) -> None:
    """Queue an update: the row of `table` whose `key` column is `row[key]` takes the other
    values in `row`, written with the queued inserts, in their statement (no round trip of its
    own). The last queued for a row wins; it sees no row the queued inserts make."""
    session.info.setdefault(_UPDATES, {}).setdefault((table, key), {})[row[key]] = row


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
    notifies: list[tuple[str, str]] = session.info.pop(_NOTIFIES, [])
    said = [list(column) for column in zip(*notifies, strict=True)] if notifies else []
    if not written and not updates:
        if said:
            await (await driver_connection(session)).execute(_NOTIFY, *said)
        return set()
    session.info.setdefault(_WRITTEN, set()).update(table.name for table in written)
    connection = await driver_connection(session)
    few: list[tuple[Table, tuple[str, ...], str | None, list[tuple[Any, ...]]]] = []
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
    for (table, key), by_key in updates.items():
        rows = list(by_key.values())
        columns = list(rows[0])
        if any(row.keys() != rows[0].keys() for row in rows):
            raise ValueError(f"updates of {table.name} queued in one transaction set different columns")
        few.append((table, tuple(columns), key, _records(table, columns, rows)))
    if few:  # the notifications ride along: no round trip of their own
        statement = _writes_from_arrays(
            tuple((table, columns, key) for table, columns, key, _ in few), bool(said)
        )
        arrays = [column for *_, records in few for column in zip(*records, strict=True)]
        await connection.execute(statement, *arrays, *said)
    elif said:
        await connection.execute(_NOTIFY, *said)
    return {table.name for table in written}


def _records(table: Table, columns: list[str], rows: list[dict[str, Any]]) -> list[tuple[Any, ...]]:
    as_json = {c for c in columns if isinstance(table.c[c].type, JSON)}
    return [tuple(_json(row[c]) if c in as_json else row[c] for c in columns) for row in rows]


@lru_cache(maxsize=256)
def _writes_from_arrays(
    shapes: tuple[tuple[Table, tuple[str, ...], str | None], ...], notifying: bool = False
) -> str:
    """One statement writing each table, its columns' values bound as arrays (an INSERT, or an
    UPDATE by the `key` column where one is named): the last write is the statement, the others
    run as its WITH clauses. `notifying`: the statement is the NOTIFYs of the two arrays bound
    after the columns', every write one of its WITHs."""
    inserts, first = [], 1
    for table, columns, key in shapes:
        if key is None:
            inserts.append(_insert_from_arrays(table, columns, first))
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


def _insert_from_arrays(table: Table, columns: tuple[str, ...], first: int) -> str:
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


def _json(value: Any) -> str | None:
    return None if value is None else _encode_json(value)


class CommitUnknown(Exception):
    """The commit failed to answer (the connection was lost, or timed out, meanwhile): the work
    may be stored or not. Not to be done again blindly: a caller that cannot tell (the group
    committer) answers the error, and a client retries with its Idempotency-Key; a consumer
    fetches the batch again, and its inbox drops what was stored. Transient when its cause is."""


def _after(callback: Callable[..., None], *args: Any) -> None:
    try:
        callback(*args)
    except Exception:
        log.exception("a callback after a commit failed (the commit stands)")


class Database:
    """One service's schema: transactions, and callbacks run after commits that wrote to a
    table (how the outbox relay and the webhook dispatcher are woken at once)."""

    def __init__(self, url: str, schema: str, pool_size: int = 10) -> None:
        self.url, self.schema = url, schema
        self.engine = create_engine(url, schema, pool_size)
        self.sessions = async_sessionmaker(self.engine, class_=AsyncSession, expire_on_commit=False)
        # Connections of their own for the transactions that need not wait for the disk (a
        # lane's, one at a time): set so once, not with a statement in each transaction.
        self._not_durable: tuple[AsyncEngine, async_sessionmaker[AsyncSession]] | None = None
        self._after_commit: list[tuple[str, Callable[[], None]]] = []
        self.kept: dict[str, Any] = {}  # see `kept`
        self._before_commit: list[tuple[str, Callable[[AsyncSession], Awaitable[None]]]] = []
        self._takers: dict[str, Callable[[list[Any]], None]] = {}

    def after_commit(self, table: str, callback: Callable[[], None]) -> None:
        """Run `callback` after each commit that wrote deferred rows to `table`."""
        self._after_commit.append((table, callback))

    def on_handed(self, to: str, taker: Callable[[list[Any]], None]) -> None:
        """Have `taker` take what each committed transaction handed `to` (`hand_after_commit`)."""
        self._takers[to] = taker

    def before_commit(self, table: str, work: Callable[[AsyncSession], Awaitable[None]]) -> None:
        """Run `work(session)` last in each transaction that wrote deferred rows to `table` (a
        doorbell rung there is heard at the commit, by other processes)."""
        self._before_commit.append((table, work))

    @asynccontextmanager
    async def transaction(self, durable: bool = True) -> AsyncIterator[AsyncSession]:
        """One unit of work: commits if the block succeeds, rolls back if it raises. Not
        `durable`: the commit returns before its record is flushed to disk (a crash of the
        server, not of this process, can lose it) -- only for work that is done again, durably,
        by someone else (a lane's)."""
        sessions = self.sessions if durable else self._sessions_not_durable()
        committing = False
        try:
            async with sessions() as session, session.begin():
                session.info[_KEPT] = self.kept
                yield session
                await write_deferred(session)
                # Every table written in the transaction, also by a handler that wrote early.
                written: set[str] = session.info.pop(_WRITTEN, set())
                for table, work in self._before_commit:
                    if table in written:
                        await work(session)
                handed: dict[str, list[Any]] = session.info.pop(_HANDED, {})
                committing = True
        except Exception as error:
            if committing:
                raise CommitUnknown("the commit's outcome is unknown") from error
            raise
        # Committed: what follows only tells others, and cannot fail the work.
        for table, callback in self._after_commit:
            if table in written:
                _after(callback)
        for to, items in handed.items():
            if (taker := self._takers.get(to)) is not None:
                _after(taker, items)

    async def read(self, sql: str, *args: Any) -> list[asyncpg.Record]:
        """One read statement on a pooled connection, in no transaction of its own and without
        the ORM: for reads asked for many times a second (a lead's keys). A one-statement
        transaction through the ORM cost ~0.9 ms of CPU here, this ~0.25 ms."""
        async with self.engine.connect() as connection:
            raw = await connection.get_raw_connection()
            driver: asyncpg.Connection = raw.driver_connection
            return await driver.fetch(sql, *args)

    def direct_connection(self) -> "DirectConnection":
        """A dedicated connection to the same schema, for one background loop."""
        return DirectConnection(self.url, self.schema)

    async def ping(self) -> None:
        async with self.engine.connect() as connection:
            await connection.execute(text("SELECT 1"))

    def _sessions_not_durable(self) -> async_sessionmaker[AsyncSession]:
        if self._not_durable is None:
            engine = create_engine(self.url, self.schema, pool_size=2, durable=False)
            self._not_durable = (
                engine,
                async_sessionmaker(engine, class_=AsyncSession, expire_on_commit=False),
            )
        return self._not_durable[1]

    async def dispose(self) -> None:
        await self.engine.dispose()
        if self._not_durable is not None:
            await self._not_durable[0].dispose()


class DirectConnection:
    """One asyncpg connection owned by one background loop (the outbox relay, the webhook
    dispatcher). These hot plumbing paths run plain SQL: the ORM and the pool cost more CPU
    than the statements themselves. Reconnects after a failure."""

    def __init__(self, url: str, schema: str) -> None:
        self.dsn = make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)
        self.schema = schema
        self._connection: asyncpg.Connection | None = None

    async def get(self) -> asyncpg.Connection:
        if self._connection is None or self._connection.is_closed():
            self._connection = await asyncpg.connect(
                self.dsn,
                timeout=5,
                command_timeout=30,
                server_settings=_server_settings(self.schema),
            )
            yield_alike(self._connection.get_server_pid())
        return self._connection

    async def close(self) -> None:
        connection, self._connection = self._connection, None
        if connection is not None:
            await connection.close(timeout=5)
