"""Property-based leads (hypothesis) through ingest's main write path, `POST /v1/leads`, on a
real port: a lead is accepted exactly when it is valid, and then every field it sent comes
back from the database as sent; text PostgreSQL cannot store is refused naming its field.
(Schemathesis over every route of every service is tests/fuzz.)"""

import json
import threading
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import uvicorn
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from services.ingest.app import create_app
from services.ingest.config import IngestSettings
from shared.embedded import free_port
from tests.conftest import ADMIN, Servers

EXAMPLES = 150
SHORT_FIELDS = ("first_name", "last_name", "company", "job_title", "city", "timeframe")  # 1-200 chars
LONG_FIELDS = ("message", "need")  # up to 5000, may be empty
# What the service trims: Python's str.strip, Unicode's White_Space and U+001C-U+001F (a list
# without those four failed on "\x1f\x80", stored as "\x80").
WHITE_SPACE = (
    "\t\n\x0b\x0c\r\x1c\x1d\x1e\x1f \x85\xa0\u1680"
    + "".join(map(chr, range(0x2000, 0x200B)))
    + "\u2028\u2029\u202f\u205f\u3000"
)


class ThreadedServer:
    """Ingest on a real port in its own thread and event loop, for a synchronous property."""

    def __init__(self, servers: Servers) -> None:
        settings = servers.settings(
            IngestSettings, rate_limit_per_key="", rate_limit_per_ip="", rate_limit_per_ip_other=""
        )
        self.port = free_port()
        self.server = uvicorn.Server(
            uvicorn.Config(create_app(settings), host="127.0.0.1", port=self.port, log_level="warning")
        )
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def __enter__(self) -> "ThreadedServer":
        self.thread.start()
        with httpx.Client() as client:
            for _ in range(400):
                try:
                    if client.get(f"{self.url}/healthz").status_code == 200:
                        return self
                except httpx.TransportError:
                    pass
                threading.Event().wait(0.05)  # the server's thread is starting up
        raise RuntimeError("ingest did not start")

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(30)


@pytest.fixture(scope="module")
def ingest_url(servers: Servers) -> Iterator[tuple[str, dict[str, str]]]:
    with ThreadedServer(servers) as server, httpx.Client(base_url=server.url) as client:
        body = {"name": "Property", "channel": "api", "scope": "history"}  # its merges overwrite
        source = client.post("/v1/sources", headers=ADMIN, json=body)
        yield server.url, {"X-Source-Key": source.json()["key"], **ADMIN}


# Any text, NUL and lone surrogates included: the service must refuse those, not fail on them.
anything = st.text(st.characters(codec=None), max_size=40)
names = st.text(st.characters(exclude_categories=("Cc", "Cs", "Zs", "Zl", "Zp")), min_size=1, max_size=40)
keys = st.from_regex(r"\A[A-Za-z0-9_.\-]{1,20}\Z")
leads = st.fixed_dictionaries(
    {},
    optional={
        **dict.fromkeys(SHORT_FIELDS, st.one_of(names, anything)),
        **dict.fromkeys(LONG_FIELDS, anything),
        "budget": st.one_of(st.integers(0, 10**12), st.floats(0, 1e12, allow_nan=False)),
        "is_decision_maker": st.booleans(),
        "custom": st.dictionaries(
            keys, st.one_of(anything, st.integers(-(2**53), 2**53), st.booleans()), max_size=4
        ),
    },
)


def expected(lead: dict[str, Any]) -> dict[str, Any]:
    """What a stored lead must hold for each field sent (text is trimmed; empties are absent)."""
    stored = {f: v.strip(WHITE_SPACE) if isinstance(v, str) else v for f, v in lead.items()}
    return {f: v for f, v in stored.items() if v not in ("", {})}


def unstorable(text: str) -> bool:
    return "\x00" in text or any(0xD800 <= ord(c) <= 0xDFFF for c in text)


def refusal(lead: dict[str, Any]) -> set[str]:
    """The fields the service must refuse: unstorable text (named down to the custom field),
    else a short field that is only blanks (the text is checked whole before the fields are)."""
    bad = {f for f, v in lead.items() if isinstance(v, str) and unstorable(v)}
    bad |= {f"custom.{k}" for k, v in lead.get("custom", {}).items() if isinstance(v, str) and unstorable(v)}
    return bad or {f for f in SHORT_FIELDS if f in lead and not lead[f].strip(WHITE_SPACE)}


def test_any_lead_is_stored_exactly_as_sent_or_refused_naming_the_field(
    ingest_url: tuple[str, dict[str, str]],
) -> None:
    url, headers = ingest_url
    outcomes: list[int] = []

    @given(lead=leads)
    @example(lead={"need": "\x1f\x80", "last_name": "\x1c"})
    @settings(max_examples=EXAMPLES, deadline=None, derandomize=True, suppress_health_check=list(HealthCheck))
    def check(lead: dict[str, Any]) -> None:
        body = {"email": f"prop-{uuid.uuid4().hex}@example.kz", **lead}
        with httpx.Client(base_url=url, headers={**headers, "content-type": "application/json"}) as client:
            response = client.post("/v1/leads", content=json.dumps(body))  # escapes lone surrogates
            outcomes.append(response.status_code)
            if refused := refusal(lead):
                assert response.status_code == 422, response.text
                assert {e["field"] for e in response.json()["errors"]} == refused
                return
            assert response.status_code == 202, response.text
            stored = client.get(f"/v1/leads/{response.json()['lead_id']}").json()
        attributes = stored["attributes"]
        assert stored["email"] == body["email"]
        assert {f: attributes.get(f) for f in expected(lead)} == expected(lead)

    check()
    assert set(outcomes) <= {202, 422}
    assert outcomes.count(202) >= EXAMPLES // 3, f"too few accepted: {outcomes.count(202)} of {len(outcomes)}"
    assert outcomes.count(422) >= EXAMPLES // 10, f"too few refused: {outcomes.count(422)} of {len(outcomes)}"
