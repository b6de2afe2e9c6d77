"""Production refuses to start without a real admin token: none, the development default, or
one shorter than 12 characters (README "Configuration"). Pure: no servers."""

import os
import subprocess
import sys

import pytest
from pydantic import ValidationError

from services.ingest.config import IngestSettings
from services.metrics.config import MetricsSettings
from services.nurture.config import NurtureSettings
from services.scoring.config import ScoringSettings
from shared.embedded import free_port
from shared.settings import DEV_ADMIN_TOKEN

EVERY_SERVICE = [IngestSettings, ScoringSettings, NurtureSettings, MetricsSettings]
REFUSED = {
    "no token": (None, "LEADFLOW_ADMIN_TOKEN must be set when LEADFLOW_ENV=production"),
    "the development token": (DEV_ADMIN_TOKEN, "must not be the development token in production"),
    "a short token": ("eleven-char", "LEADFLOW_ADMIN_TOKEN must be at least 12 characters"),
}


def environment(token: str | None, **more: str) -> dict[str, str]:
    """The process environment without any LEADFLOW_* of ours, in production with `token`."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("LEADFLOW_")}
    env |= {"LEADFLOW_ENV": "production", "LEADFLOW_SECRET_KEY": "a-sealing-key-kept-safe", **more}
    if token is not None:
        env["LEADFLOW_ADMIN_TOKEN"] = token
    return env


@pytest.fixture
def production(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    for name in [k for k in os.environ if k.startswith("LEADFLOW_")]:
        monkeypatch.delenv(name)
    monkeypatch.setenv("LEADFLOW_ENV", "production")
    monkeypatch.setenv("LEADFLOW_SECRET_KEY", "a-sealing-key-kept-safe")
    return monkeypatch


@pytest.mark.parametrize("settings_type", EVERY_SERVICE, ids=lambda t: t.__name__)
@pytest.mark.parametrize("case", REFUSED, ids=str)
def test_production_settings_refuse_a_missing_development_or_short_admin_token(
    production: pytest.MonkeyPatch, settings_type: type, case: str
) -> None:
    token, reason = REFUSED[case]
    if token is not None:
        production.setenv("LEADFLOW_ADMIN_TOKEN", token)
    with pytest.raises(ValidationError, match=reason) as refused:
        settings_type()
    assert token is None or token not in str(refused.value), "a refused token is not echoed into the logs"


@pytest.mark.parametrize("settings_type", EVERY_SERVICE, ids=lambda t: t.__name__)
def test_production_settings_take_a_real_admin_token(
    production: pytest.MonkeyPatch, settings_type: type
) -> None:
    production.setenv("LEADFLOW_ADMIN_TOKEN", "a-long-random-production-token")
    assert settings_type().admin_token_value == "a-long-random-production-token"


def test_outside_production_the_development_token_is_the_default(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in [k for k in os.environ if k.startswith("LEADFLOW_")]:
        monkeypatch.delenv(name)
    assert IngestSettings().admin_token_value == DEV_ADMIN_TOKEN


def test_a_service_started_in_production_with_the_development_token_exits_at_once() -> None:
    """The entry point a deployment runs: it stops before opening a port or a connection
    (the database and broker named here do not exist). Each refusal's reason is checked above;
    this is the wiring, so one case is enough (a process start costs seconds)."""
    token, reason = REFUSED["the development token"]
    nowhere = {
        "LEADFLOW_INGEST_PORT": str(free_port()),
        "LEADFLOW_DATABASE_URL": f"postgresql+asyncpg://nobody@127.0.0.1:{free_port()}/none",
        "LEADFLOW_KAFKA_BOOTSTRAP": f"127.0.0.1:{free_port()}",
    }
    started = subprocess.run(
        [sys.executable, "-m", "services.ingest", "serve"],
        env=environment(token, **nowhere),
        capture_output=True,
        text=True,
        timeout=60,
    )
    said = "".join(started.stderr.split())  # the traceback is wrapped to the terminal's width
    assert started.returncode != 0
    assert "".join(reason.split()) in said
    assert token is None or token not in said, "a refused token is not echoed into the logs"
