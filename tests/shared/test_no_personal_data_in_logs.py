"""Error paths that once carried a lead's email and phone into logs, dead-letter headers and
`touch.failed`: PostgreSQL quoting the value it refused, an SMTP server naming the recipient
it refused. Every log line written meanwhile (through the services' own JSON handler), every
dead-letter header and every touch's reason is searched for the email and the phone."""

import asyncio
import io
import logging
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from typing import Any

import httpx
import pytest
import yaml
from aiosmtpd.controller import Controller
from fastapi import FastAPI
from pydantic import BaseModel, Field
from sqlalchemy import text
from sqlmodel.ext.asyncio.session import AsyncSession

from services.nurture.app import create_app as nurture_app
from services.nurture.config import NurtureSettings
from services.nurture.playbooks import default_playbooks_text
from shared import topics
from shared.cli import migrations_dir
from shared.consumer import ConsumerRunner
from shared.db import Database
from shared.embedded import free_port
from shared.events import Envelope
from shared.kafka import Publisher, create_topics
from shared.migrations import upgrade
from shared.observability import Telemetry, log_handler
from shared.problem_handlers import install_problem_handlers
from shared.redact import REDACTED, redact
from tests.conftest import ADMIN, Servers, eventually, running, serving
from tests.nurture.test_followup import classified

EMAIL, PHONE = "Ərtoğrul.Məmmədov+promo@bakı-example.az", "+994 50 123 45 67"
SCHEMA = "pii_test"


@contextmanager
def every_log_line() -> Iterator[io.StringIO]:
    """What the services' handler writes, from every logger, at every level."""
    written = io.StringIO()
    handler, root = log_handler("test", written), logging.getLogger()
    level = root.level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    try:
        yield written
    finally:
        root.removeHandler(handler)
        root.setLevel(level)


def assert_clean(text: str, where: str) -> None:
    for secret in (EMAIL, PHONE, PHONE.replace(" ", ""), EMAIL.split("@")[0]):
        assert secret not in text, f"{where} carries {secret!r}"


def test_redaction_keeps_ids_and_times_and_removes_contacts() -> None:
    kept = "lead 3f1c0a4e-9b1d-4c59-8a57-426614174000 at 2026-12-02T09:29:16+00:00, 500 rows, sha 0123abcdef"
    assert redact(kept) == kept
    for contact in (
        EMAIL,
        "aruzhan@example.kz",
        "aruzhan@exa",
        PHONE,
        "+77015550101",
        "+7 (701) 555-01-01",
        "87015550101",
    ):
        assert redact(f"refused <{contact}>: no such user") == f"refused <{REDACTED}>: no such user"


def test_redaction_removes_credentials_however_they_are_quoted() -> None:
    quoted = (
        "ClientResponseError(RequestInfo(headers=<CIMultiDictProxy('Host': '127.0.0.1:8001', "
        "'Authorization': 'Bearer s3cret-admin-token', 'X-Source-Key': 'lf_src_0123456789')>))"
    )
    assert redact(quoted) == (
        "ClientResponseError(RequestInfo(headers=<CIMultiDictProxy('Host': '127.0.0.1:8001', "
        f"'Authorization': 'Bearer {REDACTED}', 'X-Source-Key': '{REDACTED}')>))"
    )
    assert redact("authorization=Basic dXNlcjpwYXNzd29yZA==") == f"authorization=Basic {REDACTED}"
    assert redact("x-telegram-bot-api-secret-token: abcdefgh1234") == (
        f"x-telegram-bot-api-secret-token: {REDACTED}"
    )
    kept = "the bearer of bad news; Authorization header missing"
    assert redact(kept) == kept


@pytest.fixture(scope="module")
async def db(servers: Servers) -> AsyncIterator[Database]:
    await asyncio.to_thread(upgrade, servers.database_url, SCHEMA, migrations_dir("scoring"))
    database = Database(servers.database_url, SCHEMA)
    yield database
    await database.dispose()


async def quote_the_email(session: AsyncSession, events: list[Envelope]) -> None:
    """A handler whose statement PostgreSQL refuses, quoting the value: `invalid input
    syntax for type integer: "<the email>"`."""
    for event in events:
        await session.execute(
            text("SELECT CAST(CAST(:email AS text) AS int)"), {"email": event.data["email"]}
        )


async def test_a_database_error_quoting_a_lead_reaches_no_log_and_no_dead_letter(
    servers: Servers, db: Database
) -> None:
    topic = f"pii-{uuid.uuid4().hex[:8]}"
    await create_topics(servers.bootstrap, [topic], 1)
    data = {"email": EMAIL, "phone": PHONE}
    event = Envelope(
        type="test.pii", lead_id=uuid.uuid4(), correlation_id=uuid.uuid4(), producer="test", data=data
    )
    publisher = Publisher(servers.bootstrap, "test")
    runner = ConsumerRunner(
        group=f"g-{topic}",
        topics=[topic],
        handlers={"test.pii": quote_the_email},
        db=db,
        telemetry=Telemetry("test"),
        bootstrap=servers.bootstrap,
        max_attempts=2,
    )
    try:
        with every_log_line() as logs:
            await publisher.publish([(topic, str(event.lead_id).encode(), event.to_bytes())])

            async def dead_lettered() -> list[Any]:
                await runner.poll_once(timeout_ms=200)
                async with db.transaction() as session:
                    query = text("SELECT headers FROM outbox WHERE topic = :dlq")
                    return list((await session.execute(query, {"dlq": topics.dlq(f"g-{topic}")})).scalars())

            [headers] = await eventually(dead_lettered, timeout=30)
    finally:
        await runner.stop()
        await publisher.stop()
    error = dict(headers)["error"]
    assert error.startswith("DBAPIError") and "invalid input syntax for type integer" in error, error
    assert_clean(str(headers), "the dead letter's headers")
    assert "invalid input syntax" in logs.getvalue(), "the error was logged"
    assert_clean(logs.getvalue(), "the logs")


@contextmanager
def refusing_smtp_server() -> Iterator[int]:
    """An SMTP server that refuses every recipient, naming them, as real ones do."""

    class Refuse:
        async def handle_RCPT(
            self, server: Any, session: Any, envelope: Any, address: str, options: Any
        ) -> str:
            return f"550 5.1.1 <{address}>: Recipient address rejected: User unknown"

    controller = Controller(Refuse(), hostname="127.0.0.1", port=free_port())
    controller.start()
    try:
        yield controller.port
    finally:
        controller.stop()


async def test_a_refused_email_fails_its_touch_without_the_address(servers: Servers) -> None:
    with refusing_smtp_server() as port, every_log_line() as logs:
        settings = servers.settings(
            NurtureSettings,
            smtp_port=port,
            touch_poll_seconds=0.05,
            touch_lease_seconds=7,
            webhook_timeout_seconds=3,
            touch_retry_seconds=0.05,
        )
        async with running(nurture_app(settings)) as nurture:
            playbooks = yaml.safe_load(default_playbooks_text())
            playbooks["playbooks"].insert(
                0,
                {
                    "name": "one",
                    "when": {"channel": ["pii"]},
                    "steps": [{"after": "0m", "channel": "email", "template": "content"}],
                },
            )
            assert (await nurture.put("/v1/playbooks", json=playbooks, headers=ADMIN)).status_code == 201
            event = classified("warm", email=EMAIL, phone=PHONE, channel="pii")
            publisher = Publisher(servers.bootstrap, "test")
            try:
                await publisher.publish(
                    [(topics.LEAD_CLASSIFICATIONS, str(event.lead_id).encode(), event.to_bytes())]
                )
            finally:
                await publisher.stop()

            async def failed() -> dict[str, Any] | None:
                timeline = (await nurture.get(f"/v1/leads/{event.lead_id}/touches", headers=ADMIN)).json()
                return next((t for t in timeline if t["status"] == "failed"), None)

            touch = await eventually(failed, timeout=30)
    assert "Recipient address rejected" in touch["detail"] and REDACTED in touch["detail"], touch
    assert_clean(touch["detail"], "touch.failed's reason")
    assert_clean(logs.getvalue(), "the logs")


class Contact(BaseModel):
    first_name: str = Field(max_length=10)


NAME = "Aruzhan Nurlanqyzy Seitkali"


@contextmanager
def every_server_log_line() -> Iterator[io.StringIO]:
    """`every_log_line`, and uvicorn's too (under `serving` it writes to its own handler)."""
    with every_log_line() as written:
        server, handler = logging.getLogger("uvicorn"), log_handler("test", written)
        server.addHandler(handler)
        try:
            yield written
        finally:
            server.removeHandler(handler)


async def test_an_unexpected_error_is_a_500_logged_by_type_and_place_not_by_its_text() -> None:
    """A pydantic error quotes its input (`input_value='Aruzhan …'`): neither the 500's log
    line nor the server's (Starlette raises an error on after answering it) may carry it."""
    app = FastAPI()
    install_problem_handlers(app)

    @app.post("/contacts")
    async def make_contact() -> None:
        Contact(first_name=NAME)  # raises ValidationError, quoting NAME

    async with serving(app) as url:
        with every_server_log_line() as written:
            async with httpx.AsyncClient() as client:
                response = await client.post(f"{url}/contacts")
    assert response.status_code == 500
    assert response.headers["content-type"] == "application/problem+json"
    logged = written.getvalue()
    assert "ValidationError" in logged and "test_no_personal_data_in_logs.py" in logged
    for part in NAME.split():
        assert part not in logged
