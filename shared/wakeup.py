"""A wake-up call for background loops: woken at once by a commit, or by a timer."""

import asyncio


class Wakeup:
    def __init__(self) -> None:
        self._event = asyncio.Event()

    def set(self) -> None:
        self._event.set()

    async def wait(self, seconds: float) -> None:
        """Return when woken or after `seconds`. Uses asyncio.timeout, not wait_for, which on
        Python 3.11 can swallow a cancellation that arrives as the event fires."""
        try:
            async with asyncio.timeout(seconds):
                await self._event.wait()
        except TimeoutError:
            pass
        self._event.clear()
