"""The ids of the rows `leadflow seed` writes, recognisably its own, so that a seed can tell
real data from an earlier seed's before it empties a table (and refuses to erase real data).

A seeded id starts `5eed5eed-5eed-0`: UUID version 0, which no uuid4 or uuid7 (the ids the
services make) ever has, so no real row is taken for a seeded one."""

import random
import uuid
from collections.abc import Iterable

import asyncpg

PREFIX, RANDOM_BITS = 0x5EED5EED5EED0, 76  # 52 bits of marker, then 76 random ones
FIRST = uuid.UUID(int=PREFIX << RANDOM_BITS)
LAST = uuid.UUID(int=((PREFIX + 1) << RANDOM_BITS) - 1)


def seeded_id(rng: random.Random) -> uuid.UUID:
    return uuid.UUID(int=(PREFIX << RANDOM_BITS) | rng.getrandbits(RANDOM_BITS))


def is_seeded(value: uuid.UUID) -> bool:
    return FIRST <= value <= LAST


class Table:
    """A table a seed empties: the column holding its seeded ids, and what one row is called."""

    def __init__(self, name: str, column: str, one: str, many: str) -> None:
        self.name, self.column, self.one, self.many = name, column, one, many


class UnseededRows(Exception):
    """Tables a seed would empty hold rows no seed wrote: `found` says how many, per service."""

    def __init__(self, found: dict[str, list[str]]) -> None:
        self.found = found
        held = "; ".join(f"{service}: {', '.join(rows)}" for service, rows in found.items())
        super().__init__(
            f"the database holds data `leadflow seed` did not write, which seeding erases ({held})"
        )


async def unseeded_rows(connection: asyncpg.Connection, schema: str, tables: Iterable[Table]) -> list[str]:
    """How many rows of each table no seed wrote, as `3 leads` (the tables with none left out).
    Two ranges of the id's index: quick however many seeded rows there are."""
    found = []
    for table in tables:
        outside = f"{table.column} < $1 OR {table.column} > $2"
        query = f'SELECT count(*) FROM "{schema}".{table.name} WHERE {outside}'  # noqa: S608 - our names
        count = await connection.fetchval(query, FIRST, LAST)
        if count:
            found.append(f"{count:,} {table.one if count == 1 else table.many}")
    return found
