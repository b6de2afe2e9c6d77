"""A service's background loops run for the life of the process (`shared.loops.run_for_good`):
one that ends anyway is logged as an error and started again, never left silently stopped;
only a stop ends it."""

import asyncio

import pytest

from services.scoring.config import ScoringSettings
from shared.loops import run_for_good
from shared.service import ServiceRuntime

# Nothing is reached: the runtime's own loops (the relay) only fail and retry meanwhile.
NOWHERE = {
    "database_url": "postgresql+asyncpg://nobody@127.0.0.1:1/none",
    "kafka_bootstrap": "127.0.0.1:1",
    "env": "test",
}


class Loop:
    """A loop that ends the first time in the way given, and runs (waits) from its second start."""

    def __init__(self, first: str) -> None:
        self.first = first
        self.starts = 0
        self.running = asyncio.Event()

    async def __call__(self) -> None:
        self.starts += 1
        if self.starts == 1:
            if self.first == "raises":
                raise RuntimeError("lost its way for lead@example.com")
            if self.first == "is cancelled":
                cancelled: asyncio.Future[None] = asyncio.get_running_loop().create_future()
                cancelled.cancel()  # someone else's future, cancelled while the loop awaited it
                await cancelled
            return  # "returns"
        self.running.set()
        await asyncio.Event().wait()


@pytest.mark.parametrize(
    ("first", "said"),
    [
        ("returns", "the loop ended by itself"),
        ("raises", "the loop failed: RuntimeError"),
        ("is cancelled", "the loop was cancelled, not by a stop"),
    ],
)
async def test_a_loop_that_ends_is_logged_and_started_again(
    first: str, said: str, caplog: pytest.LogCaptureFixture
) -> None:
    loop = Loop(first)
    task = asyncio.create_task(run_for_good("the loop", loop, pause=0))
    try:
        await asyncio.wait_for(loop.running.wait(), timeout=5)
    finally:
        task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert loop.starts == 2
    assert said in caplog.text
    assert "lead@example.com" not in caplog.text, "an error's personal data stays out of the log"


async def test_a_stop_ends_the_loop_and_it_is_not_started_again(caplog: pytest.LogCaptureFixture) -> None:
    loop = Loop("returns")
    loop.starts = 1  # so that it runs from the start
    task = asyncio.create_task(run_for_good("the loop", loop, pause=0))
    await asyncio.wait_for(loop.running.wait(), timeout=5)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert loop.starts == 2, "started once, never again"
    assert "the loop" not in caplog.text


async def test_a_stop_that_the_loop_swallowed_still_ends_it(caplog: pytest.LogCaptureFixture) -> None:
    started, starts = asyncio.Event(), 0

    async def swallowing() -> None:
        nonlocal starts
        starts += 1
        started.set()
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            return  # cleans up and returns, as if nothing had asked it to stop

    task = asyncio.create_task(run_for_good("the loop", swallowing, pause=0))
    await asyncio.wait_for(started.wait(), timeout=5)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert starts == 1
    assert "the loop" not in caplog.text


async def test_work_done_once_at_start_is_not_taken_for_a_loop_that_ended(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A service's work at start (scoring resuming rescores) ends when done, and stays ended."""
    runtime = ServiceRuntime("test", ScoringSettings(**NOWHERE))
    done, runs = asyncio.Event(), 0

    async def once() -> None:
        nonlocal runs
        runs += 1
        done.set()

    runtime.at_start(once, "once")
    await runtime.start()
    try:
        await asyncio.wait_for(done.wait(), timeout=5)
    finally:
        await runtime.stop(timeout=5)
    assert runs == 1
    assert "ended by itself" not in caplog.text
