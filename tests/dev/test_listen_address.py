"""`leadflow dev` with LEADFLOW_HOST: the services listen on that address only, so the supervisor
and the services reach each other there (a wildcard, 0.0.0.0 or ::, on loopback)."""

import socket
from pathlib import Path

import httpx
import pytest

from shared.dev import service_parts
from shared.dev_settings import DevSettings
from tests.stack import DevProcess


@pytest.mark.e2e
@pytest.mark.timeout(300)
def test_services_on_an_address_of_their_own_are_checked_and_shown_there(tmp_path: Path) -> None:
    """With a specific address (a LAN one, here 127.0.0.2) the supervisor asked 127.0.0.1 for
    /readyz, got no answer and gave up after 60 s ("not ready after 60s: ingest"); it also took
    another program on 127.0.0.1 for one holding the service's port."""
    dev = DevProcess(tmp_path, only=("ingest",), env={"LEADFLOW_HOST": "127.0.0.2"})
    port = dev.ports["ingest"]
    with socket.create_server(("127.0.0.1", port)):  # another program, on another address
        dev.start()
        try:
            assert f"leadflow: ingest   http://127.0.0.2:{port}  (docs at /docs)\n" in dev.output
            with httpx.Client(trust_env=False) as client:
                assert client.get(f"http://127.0.0.2:{port}/readyz").status_code == 200
        finally:
            assert dev.stop() == []


@pytest.mark.parametrize(
    ("host", "reached"),
    [
        ("127.0.0.1", "127.0.0.1"),
        ("192.0.2.7", "192.0.2.7"),
        ("0.0.0.0", "127.0.0.1"),
        ("::", "[::1]"),
        ("fd00::7", "[fd00::7]"),
        ("leads.example.kz", "leads.example.kz"),
    ],
)
def test_the_services_reach_each_other_where_they_listen(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, host: str, reached: str
) -> None:
    """Scoring and nurture ask ingest for the keys that open what events say about a person, and
    metrics asks the others for their backlogs, at these URLs: on 127.0.0.1 none of it answered."""
    monkeypatch.setenv("LEADFLOW_HOST", host)
    monkeypatch.setenv("LEADFLOW_ADMIN_TOKEN", "an-admin-token-of-its-own")  # beyond loopback
    monkeypatch.delenv("LEADFLOW_NURTURE_PUBLIC_URL", raising=False)
    for part, port in (("ingest", 18001), ("scoring", 18002), ("nurture", 18003)):
        monkeypatch.setenv(f"LEADFLOW_{part.upper()}_PORT", str(port))
    env = service_parts(DevSettings(), tmp_path, "postgresql://db", "bus:9092", "a-key")[0].env  # each part's
    assert {name: env[name] for name in ("LEADFLOW_INGEST_URL", "LEADFLOW_SCORING_URL")} == {
        "LEADFLOW_INGEST_URL": f"http://{reached}:18001",
        "LEADFLOW_SCORING_URL": f"http://{reached}:18002",
    }
    assert env["LEADFLOW_NURTURE_PUBLIC_URL"] == f"http://{reached}:18003"


@pytest.mark.parametrize(
    ("env", "shown"),
    [
        ({}, "dev-viewer-token"),
        ({"LEADFLOW_VIEWER_TOKEN": "a-viewer-token-of-its-own"}, "the one in LEADFLOW_VIEWER_TOKEN"),
        (
            {"LEADFLOW_HOST": "0.0.0.0", "LEADFLOW_ADMIN_TOKEN": "an-admin-token-of-its-own"},
            "none (LEADFLOW_VIEWER_TOKEN is not set: reads take the admin token)",
        ),
    ],
)
def test_the_start_names_the_viewer_token_the_services_take(
    monkeypatch: pytest.MonkeyPatch, env: dict[str, str], shown: str
) -> None:
    """Beyond loopback the services take no development token, but the start still printed the
    development viewer token as the one for reads and the dashboard."""
    for name in ("LEADFLOW_HOST", "LEADFLOW_ADMIN_TOKEN", "LEADFLOW_VIEWER_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    assert DevSettings().viewer_token_shown == shown
