"""`leadflow listen`: the receiver a person trying Leadflow points a rep at. It shows each
webhook, checks its signature, and prints how to acknowledge a hot lead."""

import json
import re
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from zoneinfo import ZoneInfo

import httpx
from sqlalchemy import text

from services.nurture.app import create_app
from services.nurture.assignments import assign_leads
from services.nurture.config import NurtureSettings
from services.nurture.listen_cli import describe
from services.nurture.webhook_attempts import signed_headers
from shared.events import utcnow
from tests.conftest import ADMIN, Servers, eventually, running
from tests.helpers import lead_classified

LEADFLOW = str(Path(sys.executable).parent / "leadflow")
LISTENING = re.compile(r"listening on (http://127\.0\.0\.1:\d+/)")


@contextmanager
def listener(*options: str) -> Iterator[tuple[list[str], subprocess.Popen[str]]]:
    """`leadflow listen --port 0` in its own process; its lines, read as they come."""
    command = [LEADFLOW, "listen", "--port", "0", *options]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    lines: list[str] = []
    assert process.stdout is not None
    reader = threading.Thread(target=lambda: lines.extend(iter(process.stdout.readline, "")), daemon=True)  # type: ignore[union-attr]
    reader.start()
    try:
        yield lines, process
    finally:
        process.terminate()
        process.wait(10)


async def address(lines: list[str]) -> str:
    found = await eventually(lambda: next((m for line in lines if (m := LISTENING.search(line))), None))
    return str(found.group(1))


async def test_a_hot_lead_is_shown_verified_with_a_command_that_acknowledges_it(servers: Servers) -> None:
    settings = servers.settings(NurtureSettings, touches_enabled=False)
    app = create_app(settings)
    async with running(app) as client:
        db = app.state.runtime.db
        async with db.transaction() as session:
            await session.execute(text("UPDATE reps SET active = false"))
        created = await client.post(
            "/v1/reps", json={"name": "Aigerim", "webhook_url": "http://127.0.0.1:9/"}, headers=ADMIN
        )
        rep = created.json()
        with listener("--secret", rep["webhook_secret"]) as (lines, _):
            url = await address(lines)
            moved = await client.patch(
                f"/v1/reps/{rep['id']}", json={"webhook_url": url + "hook"}, headers=ADMIN
            )
            assert moved.status_code == 200, moved.text
            event = lead_classified("hot")
            async with db.transaction() as session:
                await assign_leads(session, [event], settings, utcnow())
            await eventually(lambda: any("signature verified" in line for line in lines))
        shown = "".join(lines)
        assert "lead.hot" in shown and str(event.lead_id) in shown
        [command] = [line for line in lines if "curl -X POST" in line]
        ack_url, ack_body = re.search(r"curl -X POST (\S+) .* -d '(.*)'", command).groups()  # type: ignore[union-attr]
        acknowledged = await client.post(httpx.URL(ack_url).path, json=json.loads(ack_body))
        assert acknowledged.status_code == 200, acknowledged.text


async def test_a_webhook_signed_with_another_secret_is_refused() -> None:
    body = json.dumps({"type": "lead.hot", "timestamp": utcnow().isoformat(), "data": {}})
    with listener("--secret", "whsec_" + "QUJD" * 8) as (lines, _):
        url = await address(lines)
        forged = signed_headers("whsec_" + "WFla" * 8, "msg_1", body)
        async with httpx.AsyncClient() as client:
            refused = await client.post(url, content=body, headers=forged)
            unsigned = await client.post(url, content=body, headers={"content-type": "application/json"})
        assert refused.status_code == 401 and unsigned.status_code == 401
        await eventually(lambda: sum("the signature does not verify" in line for line in lines) == 2)
        assert not any("lead.hot" in line for line in lines)


async def test_without_a_secret_it_shows_the_webhook_and_says_it_did_not_check() -> None:
    body = json.dumps({"type": "touch.call_task", "timestamp": "2026-12-05T10:00:00+00:00", "data": {"x": 1}})
    with listener() as (lines, _):
        url = await address(lines)
        async with httpx.AsyncClient() as client:
            answered = await client.post(url + "any/path", content=body)
        assert answered.status_code == 204
        await eventually(lambda: any("signature not checked" in line for line in lines))
    assert any("touch.call_task" in line for line in lines)


def test_the_port_taken_is_said_in_one_line() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = subprocess.run(
            [LEADFLOW, "listen", "--port", str(port)], capture_output=True, text=True, timeout=30
        )
    assert result.returncode == 1
    assert f"cannot listen on 127.0.0.1:{port}" in result.stderr and "Traceback" not in result.stderr


def test_what_is_shown_of_a_webhook_without_an_acknowledgement() -> None:
    shown = describe({"type": "sla.breached", "timestamp": "t", "data": {"lead_id": "l", "message": "Late"}})
    assert shown == ["t  sla.breached", "  Late", '  {"lead_id": "l"}']


def test_times_are_shown_as_the_reps_clock_shows_them() -> None:
    """A rep in Baku read "SLA due 2026-12-05T10:05:00+00:00", four hours off their clock."""
    hot = {
        "type": "lead.hot",
        "timestamp": "2026-12-05T10:00:00.123456+00:00",
        "data": {"sla_due_at": "2026-12-05T10:05:00+00:00", "acknowledge": {"url": "u", "body": {}}},
    }
    shown = describe(hot, ZoneInfo("Asia/Baku"))
    assert shown[0] == "2026-12-05 14:00:00+04:00  lead.hot"
    assert shown[1] == "  SLA due 2026-12-05 14:05:00+04:00; acknowledge with:"
    assert shown[-1] == '  {"sla_due_at": "2026-12-05T10:05:00+00:00"}'  # the data as sent


def test_a_time_zone_that_is_none_is_refused_by_name() -> None:
    result = subprocess.run(
        [LEADFLOW, "listen", "--port", "0", "--tz", "Asia/Nowhere"],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 2
    assert "'Asia/Nowhere' is no time zone" in result.stderr and "Traceback" not in result.stderr
