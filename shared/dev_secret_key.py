"""The key `leadflow dev` gives the services to seal stored secrets with (LEADFLOW_SECRET_KEY):
the operator's, else the one kept in `.leadflow/secret.key`, else one made and kept there, but
never a new one for a database holding secrets that a key now missing sealed (a pg_dump restored
without secret.key): started with a new key, every hot lead went to nurture's dead letters."""

import asyncio
import os
from collections.abc import Mapping
from pathlib import Path

from sqlalchemy import Table
from sqlalchemy.ext.asyncio import create_async_engine
from sqlalchemy.pool import NullPool

from services.ingest.app import BOT_TOKENS
from services.nurture.resealing import SIGNING
from shared.postgres_password import kept_secret, read_secret
from shared.resealing import unopened_secrets
from shared.sealing import SecretBox, settings_box

KEY_FILE = "secret.key"
SEALED_BY_SERVICE: dict[str, Mapping[Table, tuple[str, ...]]] = {"nurture": SIGNING, "ingest": BOT_TOKENS}


class SealingKeyMissing(RuntimeError):
    """The database holds sealed secrets and the key that sealed them is not here."""


def secret_key(home: Path, database_url: str, admin_token: str) -> str:
    """The operator's key as given; else the kept one, or one made, when it opens every stored
    secret (with the key made from the admin token, what a stack sealed before it kept a key,
    and LEADFLOW_SECRET_KEY_PREVIOUS); else SealingKeyMissing."""
    if given := os.environ.get("LEADFLOW_SECRET_KEY"):
        return given  # the operator's choice: nurture's health says what does not open with it
    path = home / KEY_FILE
    kept = read_secret(path)
    box = settings_box(kept, os.environ.get("LEADFLOW_SECRET_KEY_PREVIOUS"), admin_token)
    if unopened := asyncio.run(count_unopened(database_url, box)):
        raise SealingKeyMissing(missing_key(path, unopened, kept is not None))
    return kept if kept is not None else kept_secret(path)


async def count_unopened(database_url: str, box: SecretBox) -> int:
    """The stored secrets of every service's schema that `box` does not open."""
    engine = create_async_engine(database_url, poolclass=NullPool)
    try:
        async with engine.connect() as connection:
            counts = []
            for schema, sealed in SEALED_BY_SERVICE.items():
                reader = await connection.execution_options(schema_translate_map={None: schema})
                counts.append(await unopened_secrets(reader, box, sealed))
            return sum(counts)
    finally:
        await engine.dispose()


def missing_key(path: Path, unopened: int, kept: bool) -> str:
    stored = (
        f"{unopened} secrets stored in the database (reps' and subscriptions' signing secrets,"
        " Telegram bot tokens)"
    )
    if kept:  # a pg_dump restored into a home whose first start had made a key of its own
        what = (
            f"the {stored} do not open with the key kept in {path}: it is not the key that sealed"
            " them, as after restoring a database without the secret.key of the same backup."
        )
    else:
        what = (
            f"the key that sealed the {stored} is missing: it was kept in {path} (or given in"
            " LEADFLOW_SECRET_KEY), and neither is here, as after restoring a pg_dump without that"
            " file; no new key was made."
        )
    return what + (
        f" Restore {path} from the same backup as the database, or set LEADFLOW_SECRET_KEY to that"
        " key. To give those secrets up instead: set LEADFLOW_SECRET_KEY to a new key (32"
        " characters or more), start, then give each rep and subscription a new secret"
        ' (POST /v1/reps/{id}/rotate-secret, POST /v1/webhooks/{id}/rotate-secret, {"overlap_hours": 0})'
        " and each Telegram source its bot token again (PUT /v1/sources/{id}/telegram-bot-token)"
    )
