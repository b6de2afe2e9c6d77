"""uvicorn's httptools protocol with bounds on a request's head (its request line and headers):
its size, and the time it may take to arrive."""

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


class BoundedHeadProtocol(HttpToolsProtocol):
    """httptools takes a head of any size, and builds each header by concatenation: one client
    sending a header of 60 MB cost ingest 5 s of CPU (other requests waited a second each) and
    one of 400 MB left it 400 MB larger. LEADFLOW_MAX_BODY_BYTES bounds only the body. A head
    past MAX_HEAD_BYTES is answered 431 and the connection closed; the parser sees none of what
    follows. Only the head is counted: a body arriving in the same read as its head is not.

    And a head must arrive within `head_seconds` of its first byte, else 408: uvicorn's idle
    timeout stops at a connection's first byte, so a client sending a header a byte at a time
    (slowloris) held its connection, and its file descriptor, for as long as it liked."""

    head_seconds = 20.0  # nginx's client_header_timeout is 60 s; Apache's reqtimeout 20-40 s

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._reading_head, self._head_bytes, self._tail = True, 0, b""
        self._refused = False
        self._head_deadline: asyncio.TimerHandle | None = None

    def connection_lost(self, exc: Exception | None) -> None:
        self._stop_head_deadline()
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
        super().data_received(data)

    def on_headers_complete(self) -> None:
        self._reading_head, self._head_bytes, self._tail = False, 0, b""
        self._stop_head_deadline()
        super().on_headers_complete()

    def on_message_complete(self) -> None:
        self._reading_head = True  # what comes next on this connection is another request
        super().on_message_complete()

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


def bounded_head(head_seconds: float) -> type[BoundedHeadProtocol]:
    """The protocol, a head given `head_seconds` to arrive (LEADFLOW_HEAD_TIMEOUT_SECONDS)."""
    return type("BoundedHeadProtocol", (BoundedHeadProtocol,), {"head_seconds": head_seconds})
