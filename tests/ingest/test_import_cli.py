"""`leadflow import` follows its import through a restart of ingest: it gave up at the first
poll ingest did not answer ("cannot reach ingest … is it running?") while `leadflow dev` had a
killed ingest running again within a second, so the person was left not knowing that the file
had been taken, how far it got, or that it had to be sent again."""

import asyncio
import io
import uuid
from pathlib import Path

import httpx
from rich.console import Console

from services.ingest.import_cli import follow, summary
from services.ingest.imports import ABANDONED
from shared.embedded import free_port
from tests.conftest import Servers, eventually
from tests.fuzz.test_no_server_errors import source_key, start_service, wait_ready

ROWS = 30_000
STALL = {"LEADFLOW_IMPORT_STALL_SECONDS": "3"}


async def test_the_command_line_follows_an_import_through_a_restart_of_ingest(
    servers: Servers, tmp_path: Path
) -> None:
    port = free_port()
    url, first = start_service("ingest", servers, tmp_path / "first.log", STALL, port=port)
    second = None
    try:
        await asyncio.to_thread(wait_ready, url, first)
        secret = await asyncio.to_thread(source_key, url)
        key = {"X-Source-Key": secret}
        tag = uuid.uuid4().hex[:8]
        body = "email\n" + "".join(f"restart-{tag}-{n}@expo.kz\n" for n in range(ROWS))
        async with httpx.AsyncClient(base_url=url) as client:
            csv = {**key, "content-type": "text/csv"}
            started = await client.post("/v1/imports", content=body, headers=csv)
            assert started.status_code == 202, started.text
            status_url = started.json()["status_url"]
            console = Console(file=io.StringIO())
            following = asyncio.create_task(asyncio.to_thread(follow, url, status_url, secret, console))

            async def stored_a_chunk() -> bool:
                return int((await client.get(status_url, headers=key)).json()["rows_done"]) > 0

            await eventually(stored_a_chunk, timeout=60)
        first.kill()  # as kill -9; `leadflow dev` then starts it again on its port
        first.wait()
        _, second = start_service("ingest", servers, tmp_path / "second.log", STALL, port=port)
        await asyncio.to_thread(wait_ready, url, second)
        report = await asyncio.wait_for(following, timeout=60)
    finally:
        for process in (first, second):
            if process is not None and process.poll() is None:
                process.terminate()
                process.wait(timeout=20)
    assert report["status"] == "interrupted", report
    assert 0 < report["rows_done"] < ROWS, report
    assert summary(report).splitlines()[1] == f"  {ABANDONED}"
