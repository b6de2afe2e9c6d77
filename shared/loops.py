"""Background loops that run for the life of a process: one that ends is started again."""

import asyncio
import logging
from collections.abc import Callable, Coroutine
from typing import Any

from shared.faults import cancelled_from_outside
from shared.redact import describe

log = logging.getLogger(__name__)
Loop = Callable[[], Coroutine[Any, Any, None]]

LOOP_RESTART_SECONDS = 1.0  # the first pause before a loop that ended is started again (doubling)


async def run_for_good(name: str, loop: Loop, pause: float = LOOP_RESTART_SECONDS) -> None:
    """Run a loop for the life of the process. Loops handle their own errors and never end; one
    that ends all the same (returns, raises, or has a cancellation not meant for it come out of
    something it awaited) would stop its part of the service without a word: it is logged as
    an error and started again, after `pause` seconds, doubling up to 30."""
    while True:
        try:
            await loop()
            ended = "ended by itself"
        except asyncio.CancelledError:
            if cancelled_from_outside():
                raise
            ended = "was cancelled, not by a stop"
        except Exception as error:
            ended = f"failed: {describe(error)}"
        if cancelled_from_outside():  # a stop the loop swallowed: it ends here
            raise asyncio.CancelledError
        log.error("%s %s; starting it again in %.0fs", name, ended, pause)
        await asyncio.sleep(pause)  # a backoff, not synchronisation
        pause = min(max(pause, 0.01) * 2, 30.0)


def name_of(loop: Loop) -> str:
    """A loop's name for the log: its function's (a bound method's, with its object's class)."""
    owner = getattr(loop, "__self__", None)
    name = getattr(loop, "__qualname__", None) or repr(loop)
    return f"{type(owner).__name__}.{loop.__name__}" if owner is not None else name
