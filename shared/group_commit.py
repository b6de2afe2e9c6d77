"""Group commit: concurrent units of work share one transaction, so durability costs one
commit per group instead of one per request."""

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from sqlalchemy.exc import IntegrityError
from sqlmodel.ext.asyncio.session import AsyncSession

from shared.db import Database

log = logging.getLogger(__name__)
T = TypeVar("T")
Work = Callable[[AsyncSession], Awaitable[Any]]


class GroupCommitter:
    """`await submit(work)` returns once `work(session)` is committed.

    Work waiting while a group commits forms the next group. If a group fails, each of its
    members is retried alone, so one bad request never fails its neighbours.
    """

    def __init__(self, db: Database, max_group: int = 128) -> None:
        self.db = db
        self.max_group = max_group
        self._queue: asyncio.Queue[tuple[Work, asyncio.Future[Any]]] = asyncio.Queue()

    async def submit(self, work: Callable[[AsyncSession], Awaitable[T]]) -> T:
        future: asyncio.Future[T] = asyncio.get_running_loop().create_future()
        self._queue.put_nowait((work, future))
        return await future

    async def run(self) -> None:
        while True:
            group = [await self._queue.get()]
            while len(group) < self.max_group and not self._queue.empty():
                group.append(self._queue.get_nowait())
            live = [(work, future) for work, future in group if not future.cancelled()]
            if live:
                await self._commit(live)

    async def _commit(self, group: list[tuple[Work, asyncio.Future[Any]]]) -> None:
        if len(group) > 1:
            try:
                async with self.db.transaction() as session:
                    results = [await work(session) for work, _ in group]
            except Exception as error:
                log.debug("group of %d failed (%r); committing each alone", len(group), error)
            else:
                for (_, future), result in zip(group, results, strict=True):
                    if not future.done():
                        future.set_result(result)
                return
        for work, future in group:
            await self._commit_alone(work, future)

    async def _commit_alone(self, work: Work, future: asyncio.Future[Any]) -> None:
        try:
            result = await self._run_alone(work)
        except Exception as error:
            if not future.done():
                future.set_exception(error)
        else:
            if not future.done():
                future.set_result(result)

    async def _run_alone(self, work: Work) -> Any:
        try:
            async with self.db.transaction() as session:
                return await work(session)
        except IntegrityError:
            # A find-or-create raced another transaction that committed the same unique
            # row first; run once more and the work finds that row.
            async with self.db.transaction() as session:
                return await work(session)
