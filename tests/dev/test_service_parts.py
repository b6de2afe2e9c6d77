"""What `leadflow dev` tells each service: the links nurture puts in webhooks and emails reach
the port it listens on, not the default one (which may be another stack's on a shared machine)."""

from pathlib import Path

import pytest

from shared.dev import service_parts
from shared.dev_settings import DevSettings


def nurture_env(home: Path, secret_key: str = "a-kept-key") -> dict[str, str]:
    parts = service_parts(DevSettings(), home, "postgresql://db", "bus:9092", secret_key)
    (nurture,) = [p for p in parts if p.name == "nurture"]
    return nurture.env


def test_nurtures_links_reach_the_port_it_listens_on(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("LEADFLOW_NURTURE_PUBLIC_URL", raising=False)
    monkeypatch.setenv("LEADFLOW_NURTURE_PORT", "18003")
    assert nurture_env(tmp_path)["LEADFLOW_NURTURE_PUBLIC_URL"] == "http://127.0.0.1:18003"


def test_the_operators_public_address_for_nurture_is_kept(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LEADFLOW_NURTURE_PORT", "18003")
    monkeypatch.setenv("LEADFLOW_NURTURE_PUBLIC_URL", "https://leads.example.kz")
    monkeypatch.setenv("LEADFLOW_ADMIN_TOKEN", "an-admin-token-of-its-own")  # others reach it there
    assert nurture_env(tmp_path)["LEADFLOW_NURTURE_PUBLIC_URL"] == "https://leads.example.kz"


def test_nurture_seals_with_a_key_of_its_own_not_one_made_from_the_admin_token(tmp_path: Path) -> None:
    """The key was made from the admin token: changing the token (as README's shared-machine
    advice asks) left every rep's stored signing secret unopenable, and no hot lead reached a rep
    (found by a review). Nurture is given the key `shared.dev_secret_key` settles (kept 0600 in
    .leadflow, or the operator's: tests/dev/test_sealing_key.py)."""
    from services.nurture.config import NurtureSettings
    from shared.sealing import SecretBox

    first = "the-key-kept-in-leadflow-secret-key"
    assert nurture_env(tmp_path, first)["LEADFLOW_SECRET_KEY"] == first

    def nurture(admin_token: str) -> NurtureSettings:
        return NurtureSettings(
            database_url="postgresql+asyncpg://db/x", admin_token=admin_token, secret_key=first, env="test"
        )

    sealed_before = SecretBox("dev:dev-admin-token").seal("a rep's secret")  # by a stack of before
    sealed = nurture("dev-admin-token").box.seal("a rep's secret")
    assert nurture("another-admin-token").box.open(sealed) == "a rep's secret"  # the token changed
    assert nurture("dev-admin-token").box.open(sealed_before) == "a rep's secret"  # and is sealed again
