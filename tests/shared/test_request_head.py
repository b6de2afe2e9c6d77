"""A request's head (its line and headers) is bounded as its body is: httptools took a header
of any size, building it by concatenation, so one client sending a 60 MB header cost ingest 5 s
of CPU and made every other request wait, and one of 400 MB left ingest 400 MB larger (found by
an outside review). A service, served as `leadflow dev` serves it, answers a head past 64 KiB
431 and closes; a smaller head, a body read with its head and requests in a row still work. And
a head sent a byte at a time (slowloris) held its connection for as long as the client liked:
one not in within LEADFLOW_HEAD_TIMEOUT_SECONDS of its first byte is answered 408."""

import socket
import threading
from collections.abc import Iterator

import pytest

from tests.conftest import Servers
from tests.fuzz.test_no_server_errors import start_service, wait_ready

HEAD_SECONDS = 1.5


@pytest.fixture(scope="module")
def ingest(servers: Servers, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, int]]:
    log = tmp_path_factory.mktemp("head") / "ingest.log"
    bounds = {
        "LEADFLOW_HEAD_TIMEOUT_SECONDS": str(HEAD_SECONDS),
        "LEADFLOW_BODY_TIMEOUT_SECONDS": str(HEAD_SECONDS),
    }
    url, process = start_service("ingest", servers, log, bounds)
    try:
        wait_ready(url, process)
        host, port = url.removeprefix("http://").split(":")
        yield host, int(port)
    finally:
        process.terminate()
        process.wait(timeout=20)


def exchange(address: tuple[str, int], *parts: bytes) -> bytes:
    """Send the parts on one connection (the last request says `connection: close`, or the server
    closes it first) and read what comes back until the server closes."""
    answer = b""
    with socket.create_connection(address, timeout=10) as connection:
        try:
            for part in parts:
                connection.sendall(part)
            while chunk := connection.recv(65536):
                answer += chunk
        except (BrokenPipeError, ConnectionResetError):
            pass  # the server answered and closed before the rest was sent
        return answer


def header_of(size: int) -> bytes:
    return b"x-padding: " + b"a" * size + b"\r\n"


def test_a_head_past_the_bound_is_answered_431_and_never_parsed(ingest: tuple[str, int]) -> None:
    start = b"GET /healthz HTTP/1.1\r\nhost: x\r\n"
    answer = exchange(ingest, start, *[header_of(256 * 1024)] * 8, b"\r\n")
    assert answer.startswith(b"HTTP/1.1 431 "), answer[:200]
    assert b"content-type: application/problem+json" in answer
    assert answer.endswith(b'"title": "Request line and headers are larger than 65536 bytes", "status": 431}')
    many = exchange(ingest, start, b"".join(b"x-%d: v\r\n" % n for n in range(20_000)), b"\r\n")
    assert many.startswith(b"HTTP/1.1 431 "), many[:200]
    long_url = exchange(ingest, b"GET /healthz?q=" + b"a" * 100_000 + b" HTTP/1.1\r\nhost: x\r\n\r\n")
    assert long_url.startswith(b"HTTP/1.1 431 ") and b"problem+json" in long_url, long_url[:200]


def test_heads_within_the_bound_bodies_and_requests_in_a_row_still_work(ingest: tuple[str, int]) -> None:
    close = b"connection: close\r\n\r\n"
    near = exchange(ingest, b"GET /healthz HTTP/1.1\r\nhost: x\r\n" + header_of(60_000) + close)
    assert near.startswith(b"HTTP/1.1 200 "), near[:200]
    body = b'{"email": "a@example.kz", "message": "' + b"m" * 60_000 + b'"}'
    post = b"POST /v1/leads HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\n"
    post += b"content-length: %d\r\nconnection: close\r\n\r\n" % len(body)
    answer = exchange(ingest, post + body)  # one send: the body is read with its head
    assert answer.startswith(b"HTTP/1.1 401 "), answer[:200]  # no source key: not a 431
    twice = b"GET /healthz HTTP/1.1\r\nhost: x\r\n" + header_of(40_000) + b"\r\n"
    answers = exchange(ingest, twice * 3 + b"GET /healthz HTTP/1.1\r\nhost: x\r\n" + close)
    assert answers.count(b"HTTP/1.1 200 ") == 4, answers[:400]


def test_a_head_sent_a_byte_at_a_time_is_answered_408_when_its_time_is_up(ingest: tuple[str, int]) -> None:
    """A client dripping a header (a byte every 0.2 s, for as long as the connection lasts), and
    one that sends half a head and nothing more: each is answered 408 and closed. Without the
    deadline, uvicorn waited for them for good (here: until the socket's 30 s timeout)."""
    stop = threading.Event()
    answers: list[bytes] = []
    with (
        socket.create_connection(ingest, timeout=30) as dripping,
        socket.create_connection(ingest, timeout=30) as silent,
    ):
        dripping.sendall(b"GET /healthz HTTP/1.1\r\nhost: x\r\nx-slow: ")
        silent.sendall(b"GET /healthz HTTP/1.1\r\nhost: x\r\n")

        def drip() -> None:
            try:
                while not stop.wait(0.2):
                    dripping.sendall(b"a")
            except OSError:
                pass  # answered and closed

        dripper = threading.Thread(target=drip)
        dripper.start()
        try:
            for connection in (dripping, silent):
                answer = b""
                try:
                    while chunk := connection.recv(65536):
                        answer += chunk
                except ConnectionResetError:
                    pass
                answers.append(answer)
        finally:
            stop.set()
            dripper.join()
    for answer in answers:
        assert answer.startswith(b"HTTP/1.1 408 "), answer[:200]
        assert answer.endswith(
            b'"title": "Request line and headers did not arrive within 1.5 s", "status": 408}'
        )


def test_a_body_that_does_not_come_is_answered_408_when_its_time_is_up(ingest: tuple[str, int]) -> None:
    """A head announcing 60,000 bytes, then nothing; and a body sent a byte every 0.2 s: each
    held its connection and the route waiting in `request.json()` for good, before any key or
    rate limit was checked (found by a review). Each is answered 408 and closed."""
    post = b"POST /v1/leads HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\n"
    post += b"x-source-key: lfk_nobody\r\ncontent-length: 60000\r\n\r\n"
    stop = threading.Event()
    answers: list[bytes] = []
    with (
        socket.create_connection(ingest, timeout=30) as dripping,
        socket.create_connection(ingest, timeout=30) as silent,
    ):
        dripping.sendall(post + b'{"email": "')
        silent.sendall(post)

        def drip() -> None:
            try:
                while not stop.wait(0.2):
                    dripping.sendall(b"a")
            except OSError:
                pass  # answered and closed

        dripper = threading.Thread(target=drip)
        dripper.start()
        try:
            for connection in (dripping, silent):
                answer = b""
                try:
                    while chunk := connection.recv(65536):
                        answer += chunk
                except ConnectionResetError:
                    pass
                answers.append(answer)
        finally:
            stop.set()
            dripper.join()
    for answer in answers:
        assert answer.startswith(b"HTTP/1.1 408 "), answer[:200]
        assert answer.endswith(b'"title": "The request\'s body did not arrive within 1.5 s", "status": 408}')
