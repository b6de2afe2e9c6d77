"""Rules nobody published follow the release: version 1 is the built-in rules of the release
that started first, and a later release's fixes to them (a word read wrongly, a phrase that
sent leads to sales) reached only new installs: an upgraded one kept reading "10 декабря 2026
года" as 2026 years. While version 1 is the only one, this release's built-in rules are stored
as version 2 when scoring starts; rules an operator published are theirs, left alone."""

from typing import Any

import httpx

from services.scoring.app import create_app
from services.scoring.config import ScoringSettings
from services.scoring.rulebook import RuleBook
from services.scoring.rules import default_rules_text
from shared.db import Database
from tests.conftest import ADMIN, Servers, eventually, running

AN_OLDER_RELEASES = default_rules_text().replace("half a year: 180,", "half a year: 180, later: 365,", 1)


async def test_an_upgraded_install_whose_rules_nobody_published_reads_this_releases_rules(
    servers: Servers,
) -> None:
    db = Database(servers.database_url, "scoring")
    try:
        async with db.transaction() as session:
            assert (await RuleBook(AN_OLDER_RELEASES).active(session)).version == 1
        settings = servers.settings(ScoringSettings)
        async with running(create_app(settings)) as scoring:
            rules = await eventually(lambda: _rules_of_version(scoring, 2), timeout=20)
            assert rules["source"] == default_rules_text()
            assert "later" not in rules["rules"]["timeframes"]["words"]["en"]
        async with db.transaction() as session:  # once: the next start stores nothing more
            assert await RuleBook().follow_release(session) is None
            published = await RuleBook().publish(session, AN_OLDER_RELEASES, AN_OLDER_RELEASES)
        assert published == 3
        async with db.transaction() as session:  # an operator's version is theirs
            assert await RuleBook().follow_release(session) is None
    finally:
        await db.dispose()


async def _rules_of_version(client: httpx.AsyncClient, version: int) -> dict[str, Any] | None:
    response = await client.get("/v1/rules", headers=ADMIN)
    body: dict[str, Any] = response.json()
    return body if response.status_code == 200 and body["version"] == version else None
