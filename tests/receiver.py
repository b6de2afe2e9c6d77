"""A real HTTP server on localhost that records webhooks and answers as told."""

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: bytes


@dataclass
class Receiver:
    url: str
    requests: list[Received] = field(default_factory=list)
    statuses: list[int] = field(default_factory=list)  # answered in order; 200 once used up
    lock: threading.Lock = field(default_factory=threading.Lock)
    gate: threading.Event | None = None  # when set up, each request waits until it opens
    headers: dict[str, str] = field(default_factory=dict)  # sent with every answer
    failing_path: str | None = None  # requests to this path are answered 503, always
    bodies: dict[int, bytes] = field(default_factory=dict)  # the body answered with a status
    by_path: dict[str, list[int]] = field(default_factory=dict)  # a path's own `statuses`, first

    def status_for(self, path: str) -> int:
        with self.lock:
            own = self.by_path.get(path)
            if own:
                return own.pop(0)
        return self.next_status()

    def next_status(self) -> int:
        with self.lock:
            return self.statuses.pop(0) if self.statuses else 200

    def record(self, received: Received) -> None:
        with self.lock:
            self.requests.append(received)

    def received(self) -> list[Received]:
        with self.lock:
            return list(self.requests)


@contextmanager
def webhook_receiver(
    statuses: list[int] | None = None,
    gate: threading.Event | None = None,
    headers: dict[str, str] | None = None,
) -> Iterator[Receiver]:
    receiver: Receiver

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("content-length", 0)))
            if receiver.gate is not None:
                receiver.gate.wait(timeout=60)
            receiver.record(Received(self.path, {k.lower(): v for k, v in self.headers.items()}, body))
            failing = receiver.failing_path is not None and self.path == receiver.failing_path
            status = 503 if failing else receiver.status_for(self.path)
            answer = receiver.bodies.get(status, b"")
            self.send_response(status)
            for name, value in receiver.headers.items():
                self.send_header(name, value)
            self.send_header("content-length", str(len(answer)))
            self.end_headers()
            self.wfile.write(answer)

        def log_message(self, *args: object) -> None:
            return None

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    url = f"http://127.0.0.1:{server.server_address[1]}/hook"
    receiver = Receiver(url, statuses=list(statuses or []), gate=gate, headers=dict(headers or {}))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield receiver
    finally:
        if gate is not None:
            gate.set()
        server.shutdown()
        server.server_close()
