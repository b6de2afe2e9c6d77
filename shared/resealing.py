"""After LEADFLOW_SECRET_KEY changes (the old key kept in LEADFLOW_SECRET_KEY_PREVIOUS), a
service seals the secrets it stores again with the new key as it starts (nurture: reps' and
subscriptions' signing secrets; ingest: the sources' Telegram bot tokens). Once each has logged
it, the old key can go. Secrets stored before sealing existed are sealed too. There are few (a
row per rep, subscription or source), so one transaction takes them all."""

import logging
from collections.abc import Mapping
from typing import Any

from sqlalchemy import Table, select, update
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlmodel.ext.asyncio.session import AsyncSession

from shared.db import Database
from shared.sealing import SecretBox

log = logging.getLogger(__name__)


async def reseal_columns(
    db: Database, box: SecretBox, sealed: Mapping[Table, tuple[str, ...]], what: str
) -> int:
    """Seal again with the current key every secret in the `sealed` columns (of tables with an
    `id`) that it did not seal; returns how many, and logs it naming them as `what`."""
    async with db.transaction() as session:
        resealed = sum([await _reseal(session, box, table, columns) for table, columns in sealed.items()])
    if resealed:
        log.info("%d %s sealed again with the current LEADFLOW_SECRET_KEY", resealed, what)
    return resealed


async def _reseal(session: AsyncSession, box: SecretBox, table: Table, columns: tuple[str, ...]) -> int:
    rows = await session.execute(select(table.c.id, *(table.c[c] for c in columns)).with_for_update())
    resealed = 0
    for row in rows.all():
        changes = {column: sealed for column in columns if (sealed := _sealed_again(box, table, row, column))}
        if changes:
            await session.execute(update(table).where(table.c.id == row.id).values(**changes))
            resealed += len(changes)
    return resealed


def _sealed_again(box: SecretBox, table: Table, row: Any, column: str) -> str | None:
    """The row's secret in `column` sealed with the current key, if it needs it; one no key
    opens is left as it is, and said (by its row's id)."""
    stored = getattr(row, column)
    if stored is None:
        return None
    try:
        return box.reseal(stored)
    except ValueError:
        log.error(
            "%s %s: its %s opens with no key given (LEADFLOW_SECRET_KEY, _PREVIOUS)",
            table.name,
            row.id,
            column,
        )
        return None


async def unopened_secrets(
    reader: AsyncSession | AsyncConnection, box: SecretBox, sealed: Mapping[Table, tuple[str, ...]]
) -> int:
    """How many secrets stored in the `sealed` columns no key of `box` opens (a restored
    database, a key lost or changed without LEADFLOW_SECRET_KEY_PREVIOUS)."""
    unopened = 0
    for table, columns in sealed.items():
        rows = await reader.execute(select(*(table.c[c] for c in columns)))
        unopened += sum(
            1 for row in rows.all() for stored in row if stored is not None and not _opens(box, stored)
        )
    return unopened


def _opens(box: SecretBox, stored: str) -> bool:
    try:
        box.open(stored)
    except ValueError:
        return False
    return True
