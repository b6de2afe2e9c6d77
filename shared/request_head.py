"""uvicorn's httptools protocol with bounds on a request's head (its request line and headers):
its size, and the time it may take to arrive; and on the time its body may take."""

import asyncio
import json

from uvicorn.protocols.http.httptools_impl import STATUS_LINE, HttpToolsProtocol

# nginx takes up to 32 KiB of headers by default (4 buffers of 8k); browsers' cookies stay far below.
MAX_HEAD_BYTES = 64 * 1024
HEAD_END = b"\r\n\r\n"
# After a refusal, what the client still sends is read and dropped this long before the close:
# closed at once, the unread bytes made the kernel reset the connection, and the client lost
# the 431 it had been sent.
LINGER_SECONDS = 2.0
# Past its first `body_seconds`, a body must keep coming at this rate (Apache's mod_reqtimeout
# MinRate): a 50 MiB import on a slow line goes on, a body sent a byte at a time does not.
BODY_MIN_RATE = 500  # bytes a second


class BoundedHeadProtocol(HttpToolsProtocol):
    """httptools takes a head of any size, and builds each header by concatenation: one client
    sending a header of 60 MB cost ingest 5 s of CPU (other requests waited a second each) and
    one of 400 MB left it 400 MB larger. LEADFLOW_MAX_BODY_BYTES bounds only the body. A head
    past MAX_HEAD_BYTES is answered 431 and the connection closed; the parser sees none of what
    follows. Only the head is counted: a body arriving in the same read as its head is not.

    And a head must arrive within `head_seconds` of its first byte, else 408: uvicorn's idle
    timeout stops at a connection's first byte, so a client sending a header a byte at a time
    (slowloris) held its connection, and its file descriptor, for as long as it liked.

    And a body must arrive within `body_seconds` of its head, plus a second for each
    BODY_MIN_RATE bytes it brings, else 408 (while the app has not read what came, the client
    is not to blame: the time starts again). A head announcing a body that never came held its
    connection and the route waiting for it for good, before any key or rate limit was checked
    (found by a review)."""

    head_seconds = 20.0  # nginx's client_header_timeout is 60 s; Apache's reqtimeout 20-40 s
    body_seconds = 60.0  # nginx's client_body_timeout (between two reads) is 60 s

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._reading_head, self._head_bytes, self._tail = True, 0, b""
        self._refused = False
        self._head_deadline: asyncio.TimerHandle | None = None
        self._body_deadline: asyncio.TimerHandle | None = None
        self._body_started, self._body_bytes = 0.0, 0

    def connection_lost(self, exc: Exception | None) -> None:
        self._stop_head_deadline()
        self._stop_body_deadline()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        if self._refused:
            return  # read and dropped, never parsed
        if self._reading_head:
            if self._head_deadline is None:
                self._head_deadline = self.loop.call_later(self.head_seconds, self._head_too_slow)
            seen = self._tail + data  # the head's end may be split between two reads
            end = seen.find(HEAD_END)
            self._head_bytes += len(data) if end < 0 else end + len(HEAD_END) - len(self._tail)
            self._tail = seen[-(len(HEAD_END) - 1) :]
            if self._head_bytes > MAX_HEAD_BYTES:
                self._refuse(431, f"Request line and headers are larger than {MAX_HEAD_BYTES} bytes")
                return
        elif self._body_deadline is not None:
            self._body_bytes += len(data)
        super().data_received(data)

    def on_headers_complete(self) -> None:
        self._reading_head, self._head_bytes, self._tail = False, 0, b""
        self._stop_head_deadline()
        super().on_headers_complete()
        self._body_started, self._body_bytes = self.loop.time(), 0  # stopped at once without a body
        self._body_deadline = self.loop.call_later(self.body_seconds, self._body_check)

    def on_message_complete(self) -> None:
        self._reading_head = True  # what comes next on this connection is another request
        self._stop_body_deadline()
        super().on_message_complete()

    def _stop_body_deadline(self) -> None:
        if self._body_deadline is not None:
            self._body_deadline.cancel()
            self._body_deadline = None

    def _body_check(self) -> None:
        self._body_deadline = None
        if self._refused or self.transport.is_closing():
            return
        now = self.loop.time()
        if self.flow.read_paused:  # the app has not read what came: not the client's time
            self._body_started, self._body_bytes = now, 0
        allowed = self._body_started + self.body_seconds + self._body_bytes / BODY_MIN_RATE
        if now < allowed:
            self._body_deadline = self.loop.call_at(allowed, self._body_check)
            return
        cycle = self.cycle
        if cycle.response_started:  # answered without its body (a 401): nothing more to say
            self.transport.close()
            return
        cycle.disconnected = True  # the route waiting for the body stops waiting
        cycle.message_event.set()
        self._refuse(408, f"The request's body did not arrive within {self.body_seconds:g} s")

    def _stop_head_deadline(self) -> None:
        if self._head_deadline is not None:
            self._head_deadline.cancel()
            self._head_deadline = None

    def _head_too_slow(self) -> None:
        self._head_deadline = None
        if self._reading_head and not self._refused and not self.transport.is_closing():
            self._refuse(408, f"Request line and headers did not arrive within {self.head_seconds:g} s")

    def _refuse(self, status: int, title: str) -> None:
        self._stop_head_deadline()
        self._stop_body_deadline()
        body = json.dumps({"type": "about:blank", "title": title, "status": status}).encode()
        head = [
            STATUS_LINE[status],
            b"content-type: application/problem+json\r\n",
            b"content-length: %d\r\n" % len(body),
            b"connection: close\r\n\r\n",
        ]
        self._refused = True
        self.transport.write(b"".join([*head, body]))
        if self.transport.can_write_eof():
            self.transport.write_eof()
        asyncio.get_running_loop().call_later(LINGER_SECONDS, self.transport.close)


def bounded_head(head_seconds: float, body_seconds: float = 60.0) -> type[BoundedHeadProtocol]:
    """The protocol, a head given `head_seconds` to arrive (LEADFLOW_HEAD_TIMEOUT_SECONDS), a
    body `body_seconds` (LEADFLOW_BODY_TIMEOUT_SECONDS)."""
    bounds = {"head_seconds": head_seconds, "body_seconds": body_seconds}
    return type("BoundedHeadProtocol", (BoundedHeadProtocol,), bounds)
