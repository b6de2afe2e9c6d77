"""A nurture whose LEADFLOW_SECRET_KEY does not open the stored signing secrets (a database
restored without its key, a key changed without LEADFLOW_SECRET_KEY_PREVIOUS) says so: every hot
lead to such a rep went to the dead letters and health said only "nurture: 1 events its consumer
could not apply". Its /readyz names the cause (nurture stays ready: the rest of what it does
works), and so does its delivery health, which metrics' /v1/health makes a problem line."""

from typing import Any

from services.nurture.app import create_app
from services.nurture.config import NurtureSettings
from tests.conftest import ADMIN, Servers, eventually, running
from tests.receiver import webhook_receiver

SEALING_KEY, ANOTHER_KEY = "k" * 32, "w" * 32


def nurture_with(servers: Servers, secret_key: str) -> Any:
    return create_app(servers.settings(NurtureSettings, touches_enabled=False, secret_key=secret_key))


async def test_signing_secrets_another_key_sealed_are_named_in_readyz_and_delivery_health(
    servers: Servers,
) -> None:
    with webhook_receiver() as receiver:
        async with running(nurture_with(servers, SEALING_KEY)) as nurture:
            created = await nurture.post(
                "/v1/reps", json={"name": "Aigerim", "webhook_url": receiver.url}, headers=ADMIN
            )
            assert created.status_code == 201, created.text
            assert (await nurture.get("/v1/delivery-health")).json()["unopened_secrets"] == 0
            assert (await nurture.get("/readyz")).json()["checks"]["secrets"] == "ok"
        async with running(nurture_with(servers, ANOTHER_KEY)) as nurture:
            assert (await nurture.get("/v1/delivery-health")).json()["unopened_secrets"] == 1

            async def ready() -> Any:
                answer = await nurture.get("/readyz")
                return answer.json() if answer.status_code == 200 else None

            report = await eventually(ready, timeout=30)  # ready (its consumer joined) all the same
    said = report["checks"]["secrets"]
    assert said.startswith(
        "failed: stored secrets do not open with this LEADFLOW_SECRET_KEY: 1 reps' and"
        " subscriptions' signing secrets, so no webhook to them can be signed"
    )
    assert ".leadflow/secret.key" in said and "LEADFLOW_SECRET_KEY_PREVIOUS" in said
