"""Group commit: concurrent units of work share one transaction, so durability costs one
commit per group instead of one per request."""

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from sqlmodel.ext.asyncio.session import AsyncSession

from shared.db import CommitUnknown, Database
from shared.faults import raced_a_unique_row

log = logging.getLogger(__name__)
T = TypeVar("T")
Work = Callable[[AsyncSession], Awaitable[Any]]
Unit = tuple[Work, Any, "asyncio.Future[Any]"]  # the work, its hint, its caller's future
BeforeGroup = Callable[[AsyncSession, list[Any]], Awaitable[None]]


class GroupCommitter:
    """`await submit(work)` returns once `work(session)` is committed.

    Work waiting while a group commits forms the next group. If a group fails, each of its
    members is retried alone, so one bad request never fails its neighbours; unless its commit
    failed to answer (`CommitUnknown`): stored perhaps, it is not done again, and each member
    gets the error.

    `before_group(session, hints)`, if given, runs first in each transaction with the hints
    its units were submitted with: a chance to do, in one query, what each unit would
    otherwise query for itself.
    """

    def __init__(self, db: Database, max_group: int = 128, before_group: BeforeGroup | None = None) -> None:
        self.db = db
        self.max_group = max_group
        self.before_group = before_group
        self._queue: asyncio.Queue[Unit] = asyncio.Queue()

    async def submit(self, work: Callable[[AsyncSession], Awaitable[T]], hint: Any = None) -> T:
        future: asyncio.Future[T] = asyncio.get_running_loop().create_future()
        self._queue.put_nowait((work, hint, future))
        return await future

    async def run(self) -> None:
        while True:
            group = [await self._queue.get()]
            while len(group) < self.max_group and not self._queue.empty():
                group.append(self._queue.get_nowait())
            live = [unit for unit in group if not unit[2].cancelled()]
            if live:
                await self._commit(live)

    async def _commit(self, group: list[Unit]) -> None:
        if len(group) > 1:
            try:
                results = await self._run(group)
            except CommitUnknown as error:  # perhaps stored: done again, it could be twice
                for _, _, future in group:
                    if not future.done():
                        future.set_exception(error)
                return
            except Exception as error:
                log.debug("group of %d failed (%r); committing each alone", len(group), error)
            else:
                for (_, _, future), result in zip(group, results, strict=True):
                    if not future.done():
                        future.set_result(result)
                return
        for unit in group:
            await self._commit_alone(unit)

    async def _run(self, group: list[Unit]) -> list[Any]:
        async with self.db.transaction() as session:
            if self.before_group is not None:
                await self.before_group(session, [hint for _, hint, _ in group if hint is not None])
            return [await work(session) for work, _, _ in group]

    async def _commit_alone(self, unit: Unit) -> None:
        future = unit[2]
        try:
            (result,) = await self._run_alone(unit)
        except Exception as error:
            if not future.done():
                future.set_exception(error)
        else:
            if not future.done():
                future.set_result(result)

    async def _run_alone(self, unit: Unit) -> list[Any]:
        try:
            return await self._run([unit])
        except Exception as error:
            if not raced_a_unique_row(error):
                raise
            return await self._run([unit])  # the work now finds the row
