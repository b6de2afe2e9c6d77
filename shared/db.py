"""Async engine and transactions for one service schema (set as the connection's search_path)."""

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker, create_async_engine
from sqlmodel.ext.asyncio.session import AsyncSession


def create_engine(url: str, schema: str, pool_size: int = 10) -> AsyncEngine:
    """An engine whose connections see `schema` first, so table names stay unqualified."""
    return create_async_engine(
        url,
        pool_size=pool_size,
        max_overflow=pool_size,
        pool_timeout=5,
        connect_args={
            "timeout": 5,
            "command_timeout": 30,
            "server_settings": {"search_path": schema, "application_name": f"leadflow-{schema}"},
        },
    )


class Database:
    """One service's database: transactions, plus callbacks run after each successful commit."""

    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine
        self.sessions = async_sessionmaker(engine, class_=AsyncSession, expire_on_commit=False)
        self._after_commit: list[Callable[[], None]] = []

    def after_commit(self, callback: Callable[[], None]) -> None:
        """Register a callback (e.g. waking the outbox relay) run after every commit."""
        self._after_commit.append(callback)

    @asynccontextmanager
    async def transaction(self, *, notify: bool = True) -> AsyncIterator[AsyncSession]:
        """One unit of work: commits if the block succeeds, rolls back if it raises.
        `notify=False` skips the after-commit callbacks (for a loop's own bookkeeping,
        which would otherwise wake itself forever)."""
        async with self.sessions() as session, session.begin():
            yield session
        if notify:
            for callback in self._after_commit:
                callback()

    async def ping(self) -> None:
        async with self.engine.connect() as connection:
            await connection.execute(text("SELECT 1"))

    async def dispose(self) -> None:
        await self.engine.dispose()
