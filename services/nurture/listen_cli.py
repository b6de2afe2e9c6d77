"""`leadflow listen`: a webhook receiver for trying Leadflow. It prints what nurture sends,
checks each signature with the rep's or subscription's secret, and answers 204."""

import contextlib
import json
import threading
from collections.abc import Callable
from datetime import datetime, tzinfo
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from standardwebhooks.webhooks import Webhook, WebhookVerificationError

MAX_BODY = 2**20  # nurture's bodies are a few kB


def describe(message: dict[str, Any], zone: tzinfo | None = None) -> list[str]:
    """What a person trying Leadflow wants to see of a webhook: its type and time, the rep's
    message, and for a hot lead the command that acknowledges it. Times are shown in `zone`
    (None: this machine's), as the rep's clock shows them; the data line keeps them as sent."""
    data = message.get("data") or {}
    lines = [f"{_local(message.get('timestamp'), zone)}  {message.get('type', '?')}"]
    if note := data.get("message"):
        lines.append(f"  {note}")
    if acknowledge := data.get("acknowledge"):
        body = json.dumps(acknowledge.get("body"), ensure_ascii=False)
        lines.append(f"  SLA due {_local(data.get('sla_due_at'), zone)}; acknowledge with:")
        json_type = "-H 'content-type: application/json'"
        lines.append(f"    curl -X POST {acknowledge.get('url')} {json_type} -d '{body}'")
    shown = {k: v for k, v in data.items() if k not in ("message", "acknowledge")}
    lines.append(f"  {json.dumps(shown, ensure_ascii=False, sort_keys=True)}")
    return lines


def _local(moment: object, zone: tzinfo | None) -> str:
    """An ISO 8601 moment in `zone`, to the second ("2026-12-05 14:00:00+04:00"); anything
    else as it came."""
    if not isinstance(moment, str):
        return "?" if moment is None else str(moment)
    try:
        parsed = datetime.fromisoformat(moment)
    except ValueError:
        return moment
    if parsed.tzinfo is None:
        return moment
    return parsed.astimezone(zone).isoformat(sep=" ", timespec="seconds")


def receiver(
    secret: str | None, say: Callable[[str], None], zone: tzinfo | None = None
) -> type[BaseHTTPRequestHandler]:
    """A request handler that verifies (when given the secret), prints and answers."""
    verifier = Webhook(secret) if secret else None
    printing = threading.Lock()  # one webhook's lines together

    class Receiver(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers.get("content-length") or 0)
            if length > MAX_BODY:
                return self._answer(413, f"refused a body of {length} bytes")
            body = self.rfile.read(length)
            signed = "signature not checked (no --secret)"
            if verifier is not None:
                try:
                    verifier.verify(body, dict(self.headers.items()))
                    signed = "signature verified"
                except WebhookVerificationError as error:
                    return self._answer(401, f"refused: the signature does not verify ({error})")
            try:
                message = json.loads(body)
            except ValueError:
                return self._answer(400, "refused: the body is not JSON")
            with printing:
                for line in [*describe(message, zone), f"  ({signed}, {self.path})"]:
                    say(line)
            self._answer(204)

        def _answer(self, status: int, why: str | None = None) -> None:
            if why:
                say(f"{self.command} {self.path}: {why}")
            self.send_response(status)
            self.send_header("content-length", "0")
            self.end_headers()

        def log_message(self, format: str, *args: Any) -> None:
            pass  # each webhook is printed above, not as an access log line

    return Receiver


def listen(
    host: str, port: int, secret: str | None, say: Callable[[str], None], zone: tzinfo | None = None
) -> None:
    """Serve until interrupted (Ctrl-C)."""
    with ThreadingHTTPServer((host, port), receiver(secret, say, zone)) as server:
        checking = "checking signatures" if secret else "not checking signatures (give --secret)"
        say(f"listening on http://{host}:{server.server_port}/, {checking}; Ctrl-C stops")
        with contextlib.suppress(KeyboardInterrupt):
            server.serve_forever()
