"""No input makes ingest answer 5xx: a schemathesis run over its OpenAPI, and property-based
leads (hypothesis) whose Unicode text must come back exactly as sent."""

import re
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from services.ingest.app import create_app
from services.ingest.config import IngestSettings
from shared.embedded import free_port
from tests.conftest import ADMIN, Servers


class ThreadedServer:
    """Ingest on a real port in its own thread and event loop, for synchronous fuzzers."""

    def __init__(self, servers: Servers) -> None:
        settings = servers.settings(IngestSettings, rate_limit_per_key="", rate_limit_per_ip="")
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
def live_ingest(servers: Servers) -> Iterator[str]:
    with ThreadedServer(servers) as server:
        yield server.url


def credentials(url: str) -> dict[str, str]:
    """A new source's key (the fuzzer may rotate or disable sources it can reach) and the admin token."""
    with httpx.Client(base_url=url) as client:
        source = client.post(
            "/v1/sources",
            headers=ADMIN,
            json={"name": "Fuzz", "channel": "api", "allowed_origins": ["https://fuzz.example"]},
        ).json()
    return {"X-Source-Key": source["key"], **ADMIN}


def test_no_input_is_a_server_error(live_ingest: str, tmp_path: Path) -> None:
    """Schemathesis's own runner (its pytest plugin does not load on this pytest) over every
    operation of ingest's OpenAPI, with valid credentials so requests reach the handlers."""
    url, headers = live_ingest, credentials(live_ingest)
    command = [
        str(Path(sys.executable).parent / "schemathesis"),
        "run",
        f"{url}/openapi.json",
        "--checks",
        "not_a_server_error",
        "--max-examples",
        "40",
        "--seed",
        "20261123",
        "--generation-database",
        "none",
        "--request-timeout",
        "20",
        *(part for name, value in headers.items() for part in ("--header", f"{name}: {value}")),
    ]
    result = subprocess.run(command, capture_output=True, text=True, timeout=900, cwd=tmp_path)
    assert result.returncode == 0, result.stdout[-6000:] + result.stderr[-2000:]
    passed = re.search(r"(\d+) generated, (\d+) passed", result.stdout)
    assert passed and int(passed.group(2)) > 500, result.stdout[-3000:]


@pytest.fixture(scope="module")
def property_credentials(live_ingest: str) -> tuple[str, dict[str, str]]:
    return live_ingest, credentials(live_ingest)


text = st.text(st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=60)
names = st.text(
    st.characters(codec="utf-8", exclude_categories=("Cs", "Cc", "Zs", "Zl", "Zp")), min_size=1, max_size=40
)


@given(
    first_name=names,
    company=names,
    message=text,
    budget=st.one_of(st.none(), st.floats(allow_nan=False, allow_infinity=False), st.integers()),
    extra=st.dictionaries(st.text(max_size=8), st.one_of(text, st.integers(), st.none()), max_size=3),
    phone=st.one_of(st.none(), text),
)
@settings(max_examples=150, deadline=None, derandomize=True, suppress_health_check=list(HealthCheck))
def test_any_lead_is_accepted_exactly_or_refused_with_a_reason(
    property_credentials: tuple[str, dict[str, str]],
    first_name: str,
    company: str,
    message: str,
    budget: Any,
    extra: dict[str, Any],
    phone: str | None,
) -> None:
    url, headers = property_credentials
    lead = {"email": "prop@example.kz", "first_name": first_name, "company": company, "message": message}
    lead |= {"budget": budget, "phone": phone, "custom": extra}
    with httpx.Client(base_url=url) as client:
        response = client.post("/v1/leads", json=lead, headers=headers)
        assert response.status_code in (202, 422), response.text
        if response.status_code == 422:
            assert response.json()["errors"], response.text
            return
        stored = client.get(f"/v1/leads/{response.json()['lead_id']}", headers=headers).json()["attributes"]
    assert stored["first_name"] == first_name.strip() and stored["company"] == company.strip()
