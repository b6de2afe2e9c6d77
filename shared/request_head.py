"""uvicorn's httptools protocol with a bound on a request's head (its request line and headers)."""

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
    follows. Only the head is counted: a body arriving in the same read as its head is not."""

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._reading_head, self._head_bytes, self._tail = True, 0, b""
        self._refused = False

    def data_received(self, data: bytes) -> None:
        if self._refused:
            return  # read and dropped, never parsed
        if self._reading_head:
            seen = self._tail + data  # the head's end may be split between two reads
            end = seen.find(HEAD_END)
            self._head_bytes += len(data) if end < 0 else end + len(HEAD_END) - len(self._tail)
            self._tail = seen[-(len(HEAD_END) - 1) :]
            if self._head_bytes > MAX_HEAD_BYTES:
                self._refuse_head()
                return
        super().data_received(data)

    def on_headers_complete(self) -> None:
        self._reading_head, self._head_bytes, self._tail = False, 0, b""
        super().on_headers_complete()

    def on_message_complete(self) -> None:
        self._reading_head = True  # what comes next on this connection is another request
        super().on_message_complete()

    def _refuse_head(self) -> None:
        title = f"Request line and headers are larger than {MAX_HEAD_BYTES} bytes"
        body = json.dumps({"type": "about:blank", "title": title, "status": 431}).encode()
        head = [
            STATUS_LINE[431],
            b"content-type: application/problem+json\r\n",
            b"content-length: %d\r\n" % len(body),
            b"connection: close\r\n\r\n",
        ]
        self._refused = True
        self.transport.write(b"".join([*head, body]))
        if self.transport.can_write_eof():
            self.transport.write_eof()
        asyncio.get_running_loop().call_later(LINGER_SECONDS, self.transport.close)
