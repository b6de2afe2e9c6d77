"""Built-in rules and playbooks nobody published follow every release, not only the first one
after the install: an install that had followed one release (its version 2) kept it through
every later release's fixes (found by a review of upgrading). A comment alone is no new
version, and a version an operator published stops the following for good."""

import uuid
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest

from services.nurture.followup import PlaybookBook
from services.nurture.playbooks import default_playbooks_text
from services.scoring.rulebook import RuleBook
from services.scoring.rules import default_rules_text
from shared.db import Database
from shared.documents import VersionedDocuments
from tests.conftest import PostgresServer

RULES = default_rules_text()
PLAYBOOKS = default_playbooks_text()
BOOKS: dict[str, tuple[Callable[[str | None], VersionedDocuments[Any]], str, str, str]] = {
    "scoring": (lambda text: RuleBook(text), RULES, "half a year: 180,", "half a year: 180, later: 365,"),
    "nurture": (lambda text: PlaybookBook(text), PLAYBOOKS, "weekly_cap: 3 ", "weekly_cap: 2 "),
}


@pytest.fixture
async def database(postgres: PostgresServer) -> AsyncIterator[str]:
    name = f"leadflow_documents_{uuid.uuid4().hex[:8]}"
    await postgres.execute(f'CREATE DATABASE "{name}" TEMPLATE "{postgres.template}"')
    try:
        yield postgres.database_url(name)
    finally:
        await postgres.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.mark.parametrize("service", sorted(BOOKS))
async def test_every_release_is_followed_until_an_operator_publishes(database: str, service: str) -> None:
    book_of, current, line, changed = BOOKS[service]
    oldest = current.replace(line, changed, 1)
    older = oldest.replace(changed, line, 1) + "\n# a release's comment\n"  # the fix, and a comment
    assert current in older and oldest != current
    db = Database(database, service)
    try:
        async with db.transaction() as session:
            assert (await book_of(oldest).active(session)).version == 1  # installed by the oldest
        async with db.transaction() as session:
            assert await book_of(older).follow_release(session) == 2  # the next release fixed it
        async with db.transaction() as session:
            assert await book_of(current).follow_release(session) is None  # a comment alone: nothing
            assert await book_of(oldest).follow_release(session) == 3  # a release after that
        async with db.transaction() as session:
            assert await book_of(current).follow_release(session) == 4
            assert await book_of(current).follow_release(session) is None  # once
            assert await book_of(None).publish(session, oldest, oldest) == 5  # an operator's own
        async with db.transaction() as session:
            assert await book_of(older).follow_release(session) is None  # theirs, left alone
            assert (await book_of(current).active(session)).version == 5
    finally:
        await db.dispose()
