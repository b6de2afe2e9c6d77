"""A provider's failure, once turned into text, leaves no garbage for the collector: the frames
aiohttp's and aiosmtplib's errors hold form cycles that only a collection (a pause) would free."""

import gc
import socket
from collections.abc import Awaitable, Callable, Iterator

import aiohttp
import aiosmtplib
import pytest

from shared.faults import drop_traceback

FAILURES = 20


@pytest.fixture
def refused_port() -> int:
    """A port on which nothing listens: every connection is refused."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture
def no_collections() -> Iterator[None]:
    gc.collect()
    gc.disable()
    try:
        yield
    finally:
        gc.enable()


async def garbage_after(fail: Callable[[], Awaitable[None]], dropped: bool) -> int:
    """Objects a collection finds unreachable after FAILURES failures, each turned into text."""
    gc.collect()
    for _ in range(FAILURES):
        try:
            await fail()
        except (aiohttp.ClientError, aiosmtplib.SMTPException, OSError) as error:
            assert str(error)
            if dropped:
                drop_traceback(error)
    return gc.collect()


@pytest.mark.usefixtures("no_collections")
async def test_a_refused_webhook_or_sms_leaves_no_garbage(refused_port: int) -> None:
    async with aiohttp.ClientSession() as http:

        async def post() -> None:
            async with http.post(f"http://127.0.0.1:{refused_port}/hook", json={}):
                pass

        assert await garbage_after(post, dropped=True) == 0
        assert await garbage_after(post, dropped=False) > FAILURES  # what it prevents


@pytest.mark.usefixtures("no_collections")
async def test_a_refused_email_leaves_no_garbage(refused_port: int) -> None:
    async def send() -> None:
        await aiosmtplib.send(
            b"Subject: hello\r\n\r\nhello",
            sender="us@example.kz",
            recipients=["them@example.kz"],
            hostname="127.0.0.1",
            port=refused_port,
            timeout=5,
            start_tls=False,
        )

    assert await garbage_after(send, dropped=True) == 0
    assert await garbage_after(send, dropped=False) > FAILURES
