"""The versioned rules in the database: the active version is the newest; each accepted
change is a new number. Every replica checks for a newer version at most once a second."""

import time
from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, select, text
from sqlalchemy.dialects.postgresql import insert
from sqlmodel.ext.asyncio.session import AsyncSession

from services.scoring.models import RulesVersion
from services.scoring.rules import Rules, default_rules_text, parse_rules

VERSIONS = RulesVersion.__table__  # type: ignore[attr-defined]


@dataclass(frozen=True)
class ActiveRules:
    version: int
    rules: Rules


class RuleBook:
    def __init__(self, initial_source: str | None = None, check_every_seconds: float = 1.0) -> None:
        self.initial_source = initial_source or default_rules_text()
        self.check_every_seconds = check_every_seconds
        self._active: ActiveRules | None = None
        self._checked_at = 0.0

    async def active(self, session: AsyncSession) -> ActiveRules:
        if self._active is not None and time.monotonic() - self._checked_at < self.check_every_seconds:
            return self._active
        newest = (await session.execute(select(func.max(VERSIONS.c.version)))).scalar()
        if newest is None:
            await self._install_initial(session)
            newest = 1
        if self._active is None or self._active.version != newest:
            row = await session.get(RulesVersion, newest)
            assert row is not None
            self._active = ActiveRules(newest, Rules.model_validate(row.rules))
        self._checked_at = time.monotonic()
        return self._active

    async def _install_initial(self, session: AsyncSession) -> None:
        rules = parse_rules(self.initial_source)
        values = {"version": 1, "rules": rules.model_dump(mode="json"), "source": self.initial_source}
        await session.execute(insert(VERSIONS).values(**values).on_conflict_do_nothing())

    async def publish(
        self, session: AsyncSession, document: str | dict[str, Any], source: str
    ) -> ActiveRules:
        """Validate and store a new version (InvalidRules if it cannot be used). Call
        `forget` once the transaction has committed, so this process uses it at once."""
        rules = parse_rules(document)
        await self.active(session)
        await session.execute(text("SELECT pg_advisory_xact_lock(hashtext('scoring.rules_versions'))"))
        newest = (await session.execute(select(func.max(VERSIONS.c.version)))).scalar() or 0
        session.add(RulesVersion(version=newest + 1, rules=rules.model_dump(mode="json"), source=source))
        await session.flush()
        return ActiveRules(newest + 1, rules)

    def forget(self) -> None:
        self._active = None
