"""What `leadflow dev` tells each service: the links nurture puts in webhooks and emails reach
the port it listens on, not the default one (which may be another stack's on a shared machine)."""

from pathlib import Path

import pytest

from shared.dev import service_parts
from shared.dev_settings import DevSettings


def nurture_env(home: Path) -> dict[str, str]:
    (nurture,) = [
        p for p in service_parts(DevSettings(), home, "postgresql://db", "bus:9092") if p.name == "nurture"
    ]
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
