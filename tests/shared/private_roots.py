"""Embedded PostgreSQL servers for the tests: under the root given (tests/shared/conftest.py's
`private`), and their data removed once done."""

import asyncio
import warnings
from pathlib import Path

import asyncpg

from shared.embedded import free_port
from shared.embedded_postgres import EmbeddedPostgres
from shared.private_data import PrivateData, discard_all_linked, discard_linked


def started(data_dir: Path, private: PrivateData | None = None) -> EmbeddedPostgres:
    postgres = EmbeddedPostgres(data_dir, free_port(), durable=False, private=private)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        postgres.start()
    return postgres


def query(url: str, sql: str) -> object:
    async def run() -> object:
        connection = await asyncpg.connect(url.replace("+asyncpg", ""))
        try:
            return await connection.fetchval(sql)
        finally:
            await connection.close()

    return asyncio.run(run())


def discard(postgres: EmbeddedPostgres) -> None:
    """A stopped test server's data, removed with its link (`discard_linked`)."""
    discard_linked(postgres.data_dir)


__all__ = ["discard", "discard_all_linked", "discard_linked", "query", "started"]
