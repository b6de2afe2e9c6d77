"""A service's schema: transactions with work before and after their commits; direct connections."""

import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

import asyncpg
from sqlalchemy import make_url, text
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker
from sqlmodel.ext.asyncio.session import AsyncSession

from shared.db.deferred import HANDED, KEPT, WRITTEN, write_deferred
from shared.db.engine import create_engine, server_settings, yield_alike

log = logging.getLogger(__package__)


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
                session.info[KEPT] = self.kept
                yield session
                written, handed = await self._finish(session)
                committing = True
        except Exception as error:
            if committing:
                raise CommitUnknown("the commit's outcome is unknown") from error
            raise
        self._tell(written, handed)

    async def _finish(self, session: AsyncSession) -> tuple[set[str], dict[str, list[Any]]]:
        """The transaction's last work before its commit: the deferred writes, then the work
        before commits of the tables written; returns those tables and what was handed."""
        await write_deferred(session)
        # Every table written in the transaction, also by a handler that wrote early.
        written: set[str] = session.info.pop(WRITTEN, set())
        for table, work in self._before_commit:
            if table in written:
                await work(session)
        handed: dict[str, list[Any]] = session.info.pop(HANDED, {})
        return written, handed

    def _tell(self, written: set[str], handed: dict[str, list[Any]]) -> None:
        """Committed: what follows only tells others, and cannot fail the work."""
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
                server_settings=server_settings(self.schema),
            )
            yield_alike(self._connection.get_server_pid())
        return self._connection

    async def close(self) -> None:
        connection, self._connection = self._connection, None
        if connection is not None:
            await connection.close(timeout=5)
