"""Embedded PostgreSQL servers for the tests of its data's place, each under the root given
(tests/shared/conftest.py's `private`)."""

import asyncio
import warnings
from pathlib import Path

import asyncpg

from shared.embedded import free_port
from shared.embedded_postgres import EmbeddedPostgres
from shared.private_data import PrivateData


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
