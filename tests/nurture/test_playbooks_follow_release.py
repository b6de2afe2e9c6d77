"""Playbooks nobody published follow the release, as scoring's rules do
(tests/scoring/test_rules_follow_release.py): a release's fixed texts reach an upgraded install."""

from typing import Any

import httpx

from services.nurture.app import create_app
from services.nurture.config import NurtureSettings
from services.nurture.followup import PlaybookBook
from services.nurture.playbooks import default_playbooks_text
from shared.db import Database
from tests.conftest import ADMIN, Servers, eventually, running

AN_OLDER_RELEASES = default_playbooks_text().replace("weekly_cap: 3 ", "weekly_cap: 2 ", 1)


async def test_an_upgraded_install_whose_playbooks_nobody_published_reads_this_releases(
    servers: Servers,
) -> None:
    assert default_playbooks_text() != AN_OLDER_RELEASES
    db = Database(servers.database_url, "nurture")
    try:
        async with db.transaction() as session:
            assert (await PlaybookBook(AN_OLDER_RELEASES).active(session)).value.weekly_cap == 2
        async with running(create_app(servers.settings(NurtureSettings))) as nurture:
            playbooks = await eventually(lambda: _playbooks_of_version(nurture, 2), timeout=20)
            assert playbooks["weekly_cap"] == 3
    finally:
        await db.dispose()


async def _playbooks_of_version(client: httpx.AsyncClient, version: int) -> dict[str, Any] | None:
    response = await client.get("/v1/playbooks", headers=ADMIN)
    body: dict[str, Any] = response.json()
    return body["playbooks"] if response.status_code == 200 and body["version"] == version else None
