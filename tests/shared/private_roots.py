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
from shared.private_data import PrivateData, running_postmaster


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


def discard_linked(link: Path, private: PrivateData | None = None) -> None:
    """As root the data is apart from its link (/var/lib/leadflow-embedded-postgres/data/<random>),
    and once pytest had removed the link a later start would set it aside for 7 days: about
    125 MB a test run's. Only data of that root whose server is not running is removed."""
    pgdata = Path(os.readlink(link)) if link.is_symlink() else None
    if pgdata is None or pgdata.parent.parent != (private or PrivateData()).data:
        return
    if running_postmaster(pgdata, pgdata.stat().st_uid if pgdata.exists() else -1) is None:
        link.unlink()
        shutil.rmtree(pgdata.parent, ignore_errors=True)


def discard_all_linked(folder: Path) -> None:
    """`discard_linked` for every `postgres` link under `folder` (the homes `leadflow dev` made)."""
    for link in folder.rglob("postgres"):
        discard_linked(link)
