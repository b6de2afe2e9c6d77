"""Embedded PostgreSQL servers for the tests: under the root given (tests/shared/conftest.py's
`private`), and their data removed once done."""

import asyncio
import os
import shutil
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


def discard(postgres: EmbeddedPostgres) -> None:
    """A stopped test server's data, removed with its link. As root the data is apart from the
    link (/var/lib/leadflow-embedded-postgres/data/<random>), and once pytest had removed the link
    a later start would set it aside for 7 days: about 125 MB a test run's."""
    link = postgres.data_dir
    if link.is_symlink():
        private = Path(os.readlink(link)).parent
        link.unlink()
        shutil.rmtree(private, ignore_errors=True)
