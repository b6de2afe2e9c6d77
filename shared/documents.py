"""Versioned configuration documents (scoring's rules, nurture's playbooks): YAML or JSON,
validated by a pydantic model when loaded, each accepted change stored as a new numbered
version; the newest is active. Every replica checks for a newer one at most once a second."""

import asyncio
import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Generic, TypeVar

import yaml
from fastapi import HTTPException, Request
from pydantic import BaseModel, ValidationError
from sqlalchemy import Table, func, insert, select, text
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlmodel.ext.asyncio.session import AsyncSession

from shared.db import Database
from shared.faults import raise_hidden_stop
from shared.http import InvalidInput
from shared.inputs import find_unstorable, unstorable

log = logging.getLogger(__name__)

M = TypeVar("M", bound=BaseModel)
# Sections, rules and their lists nest a few levels (`intent.phrases.callback_request.en` is
# five); deeper is no document of ours, and thousands of levels would exhaust the stack of
# the parser, the text check and the validation alike.
MAX_DEPTH = 32
TOO_DEEP = f"nested more than {MAX_DEPTH} levels deep"
YAML_TYPES = ("application/yaml", "application/x-yaml", "text/yaml", "text/x-yaml", "text/plain")
DOCUMENT_BODY: dict[str, Any] = {  # the OpenAPI request body of a PUT of a whole document
    "requestBody": {
        "required": True,
        "description": "The whole document, as YAML (GET shows the current one) or JSON.",
        "content": {"application/yaml": {"schema": {"type": "string"}}, "application/json": {"schema": {}}},
    }
}


def parse_document(document: str | dict[str, Any], model: type[M]) -> M:
    """The document as `model`; InvalidInput (a 422) says what is wrong and where: a YAML
    error by line and column, a rule by its path (`engagement.half_life_days`)."""
    if isinstance(document, str):
        try:
            document = yaml.load(document, Loader=_DocumentLoader)  # noqa: S506 (a SafeLoader)
        except yaml.YAMLError as error:
            mark = getattr(error, "problem_mark", None)
            where = f"line {mark.line + 1}, column {mark.column + 1}" if mark else "document"
            raise InvalidInput([(where, f"not valid YAML: {getattr(error, 'problem', error)}")]) from error
    if not isinstance(document, dict):
        raise InvalidInput([("document", "expected a mapping of sections")])
    if _deeper_than(document, MAX_DEPTH):
        raise InvalidInput([("body", TOO_DEEP)])
    if found := find_unstorable(document, "document"):
        where, reason = found
        raise InvalidInput([(where.removeprefix("document."), reason)])
    try:
        return model.model_validate(document)
    except ValidationError as error:
        errors = [(".".join(str(p) for p in e["loc"]) or "document", e["msg"]) for e in error.errors()]
        raise InvalidInput(errors) from error


class _DocumentLoader(yaml.SafeLoader):
    """YAML's safe loader, refusing nesting deeper than MAX_DEPTH as it composes, before the
    recursion goes any deeper; and anchors and aliases: a few hundred bytes of aliases to
    aliases ("billion laughs") expand to billions of nodes for every walk of the document."""

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self.depth = 0  # collections around the node being composed

    def compose_node(self, parent: Any, index: Any) -> Any:
        event = self.peek_event()
        if isinstance(event, yaml.AliasEvent) or getattr(event, "anchor", None) is not None:
            mark = event.start_mark
            where = f"line {mark.line + 1}, column {mark.column + 1}"
            raise InvalidInput([("body", f"YAML anchors and aliases (&, *) are not accepted ({where})")])
        if not isinstance(event, yaml.CollectionStartEvent):
            return super().compose_node(parent, index)
        if self.depth >= MAX_DEPTH:
            mark = event.start_mark
            raise InvalidInput([("body", f"{TOO_DEEP} (line {mark.line + 1}, column {mark.column + 1})")])
        self.depth += 1
        try:
            return super().compose_node(parent, index)
        finally:
            self.depth -= 1

    def construct_object(self, node: yaml.Node, deep: bool = False) -> Any:
        """A value its tag cannot hold (`2026-02-30`, year 0, an integer of thousands of
        digits) is the document's error at its line, not a failure of the service."""
        try:
            return super().construct_object(node, deep)
        except (ValueError, OverflowError) as error:
            mark = node.start_mark
            where = f"line {mark.line + 1}, column {mark.column + 1}"
            raise InvalidInput([(where, f"not a value YAML can read: {error}")]) from error


def _deeper_than(value: Any, limit: int) -> bool:
    """Whether mappings and lists nest in `value` more than `limit` levels (without recursion)."""
    pending = [(value, 0)]
    while pending:
        item, depth = pending.pop()
        items = item.values() if isinstance(item, dict) else item if isinstance(item, list) else None
        if items is None:
            continue
        if depth >= limit:
            return True
        pending += [(child, depth + 1) for child in items]
    return False


async def read_document(request: Request) -> tuple[str | dict[str, Any], str]:
    """A document from a request body (YAML or JSON), and the text as sent."""
    media_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    body = await request.body()
    try:
        source = body.decode()
    except UnicodeDecodeError as error:
        raise InvalidInput([("body", "not UTF-8 text")]) from error
    if reason := unstorable(source):
        raise InvalidInput([("body", reason)])
    if media_type == "application/json":
        try:
            return json.loads(source), source
        except ValueError as error:
            raise InvalidInput([("body", f"not valid JSON: {error}")]) from error
        except RecursionError as error:  # the parser ran out of stack before MAX_DEPTH was checked
            raise InvalidInput([("body", TOO_DEEP)]) from error
    if media_type in YAML_TYPES:
        return source, source
    raise HTTPException(415, "Send the document as application/yaml or application/json")


@dataclass(frozen=True)
class Active(Generic[M]):
    version: int
    value: M


@dataclass(frozen=True)
class Stored:
    version: int
    document: dict[str, Any]
    source: str
    created_at: datetime | None


class VersionedDocuments(Generic[M]):
    """`table` has columns version, `column` (the validated document as JSON), source,
    created_at and from_release (a release's built-in document, not an operator's)."""

    def __init__(
        self,
        table: Table,
        column: str,
        model: type[M],
        initial_source: str,
        clock: Callable[[], float] = time.monotonic,
        decide_again: str = "",
    ) -> None:
        """`decide_again`: how an operator has what was decided under an older version decided
        again, said when a release's version is stored (`; POST /v1/rescore …`)."""
        self.table, self.column, self.model = table, column, model
        self.initial_source, self.decide_again = initial_source, decide_again
        self.clock = clock
        self._active: Active[M] | None = None
        self._newest_read = 0  # the newest version stored when `_active` was chosen
        self._checked_at = 0.0
        self._generation = 0  # times `forget` was called

    async def active(self, session: AsyncSession, at_least: int = 0) -> Active[M]:
        """The newest version, as read at most a second ago; read again if older than
        `at_least` (a version some data was already decided under, here or in a replica)."""
        cached = self._active
        if cached is not None and cached.version >= at_least and self.clock() - self._checked_at < 1.0:
            return cached
        generation = self._generation
        newest = await self._newest(session)
        if newest is None:
            await self._install_initial(session)
            newest = 1
        active = cached if cached is not None and self._newest_read == newest else None
        active = active or await self._newest_valid(session, newest)
        if generation == self._generation:  # else a version was published during this read: not kept
            self._active, self._newest_read, self._checked_at = active, newest, self.clock()
        return active

    async def _newest_valid(self, session: AsyncSession, newest: int) -> Active[M]:
        """The newest version the model takes. One stored before a release bounded a setting
        it breaks is passed over, with an error logged, until a new version replaces it: read
        as it is, it would fail every decision made under it, and every read of the document."""
        for version in range(newest, 0, -1):
            stored = await self.stored(session, version)
            try:
                return Active(version, self.model.model_validate(stored.document))
            except ValidationError as error:
                where = ", ".join(".".join(str(p) for p in e["loc"]) for e in error.errors())
                log.error(
                    "%s version %d breaks the current bounds (%s): the newest that fits is used"
                    " until a new one is published",
                    self.table.name,
                    version,
                    where,
                )
        raise RuntimeError(f"no version in {self.table.name} fits the current bounds: publish a new one")

    async def stored(self, session: AsyncSession, version: int) -> Stored:
        t = self.table.c
        row = (await session.execute(select(self.table).where(t.version == version))).one()._mapping
        return Stored(row["version"], row[self.column], row["source"], row["created_at"])

    async def publish(self, session: AsyncSession, document: str | dict[str, Any], source: str) -> int:
        """Validate and store a new version (InvalidInput if it cannot be used). Call `forget`
        once the transaction has committed, so this process uses it at once."""
        value = parse_document(document, self.model)
        if await self._newest(session) is None:  # the initial version first (not read: it may be unusable)
            await self._install_initial(session)
        lock = text("SELECT pg_advisory_xact_lock(hashtext(:name))")
        await session.execute(lock, {"name": self.table.name})
        version = (await self._newest(session) or 0) + 1
        await session.execute(insert(self.table).values(**self._row(version, value, source, False)))
        return version

    def forget(self) -> None:
        """Read the newest version again next time: one was published. A read already under
        way may have seen the version before it, so what it finds is not kept."""
        self._active = None
        self._generation += 1

    async def follow_release(self, session: AsyncSession) -> int | None:
        """While nobody has published a version (every one stored is a release's built-in
        document: `from_release`), the built-in document of this release is the one in force: one
        that reads differently from the newest stored (a release's fixes to the built-in
        vocabulary or texts; a comment alone is no change) is stored as the next version, and its
        number answered; None when nothing changes."""
        lock = text("SELECT pg_advisory_xact_lock(hashtext(:name))")
        await session.execute(lock, {"name": self.table.name})
        newest = await self._newest(session)
        if newest is None or await self._published_any(session):
            return None
        value = parse_document(self.initial_source, self.model)
        if (await self.stored(session, newest)).document == value.model_dump(mode="json"):
            return None
        await session.execute(
            insert(self.table).values(**self._row(newest + 1, value, self.initial_source, True))
        )
        return newest + 1

    async def _published_any(self, session: AsyncSession) -> bool:
        published = select(self.table.c.version).where(self.table.c.from_release.is_(False)).limit(1)
        return (await session.execute(published)).first() is not None

    async def follow_release_at_start(self, db: Database, retry_seconds: float = 5.0) -> None:
        """`follow_release`, once the database answers, saying so when it stores a version."""
        while True:
            try:
                async with db.transaction() as session:
                    version = await self.follow_release(session)
                break
            except Exception as error:
                raise_hidden_stop(error)
                failed = "checking the built-in %s failed, next try in %.0fs: %r"
                log.warning(failed, self.table.name, retry_seconds, error)
                await asyncio.sleep(retry_seconds)  # the database is not there yet: a retry
        if version is not None:
            self.forget()
            log.warning(
                "%s: nobody had published a version, so this release's built-in one is now version %d"
                " (what was decided under version %d stays until decided again%s)",
                self.table.name,
                version,
                version - 1,
                self.decide_again,
            )

    async def _newest(self, session: AsyncSession) -> int | None:
        newest: int | None = (await session.execute(select(func.max(self.table.c.version)))).scalar()
        return newest

    async def _install_initial(self, session: AsyncSession) -> None:
        value = parse_document(self.initial_source, self.model)
        row = self._row(1, value, self.initial_source, True)
        await session.execute(pg_insert(self.table).values(**row).on_conflict_do_nothing())

    def _row(self, version: int, value: M, source: str, from_release: bool) -> dict[str, Any]:
        document = value.model_dump(mode="json")
        return {"version": version, self.column: document, "source": source, "from_release": from_release}
