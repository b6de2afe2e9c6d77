"""`leadflow dev` never makes a new sealing key (.leadflow/secret.key) for a database holding
secrets that a key now missing sealed: restored from a pg_dump without that file, it made a new
one, said "ready", and every hot lead went to nurture's dead letters ("a sealed secret does not
open with this LEADFLOW_SECRET_KEY"). Against the real PostgreSQL of the fixtures."""

import asyncio
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import insert
from sqlalchemy.ext.asyncio import create_async_engine
from sqlalchemy.pool import NullPool

from services.nurture.models import Rep
from shared.dev_secret_key import SealingKeyMissing, secret_key
from shared.embedded import free_port
from shared.sealing import SecretBox
from tests.conftest import PostgresServer
from tests.dev.test_refusals import leadflow_dev

LOST_KEY = "the-key-that-sealed-them-and-was-not-restored"
ADMIN_TOKEN = "an-admin-token-of-its-own"


@pytest.fixture
def database(postgres: PostgresServer) -> Iterator[str]:
    """A database of its own, migrated to every schema's head."""
    name = f"leadflow_key_{uuid.uuid4().hex[:8]}"
    asyncio.run(postgres.execute(f'CREATE DATABASE "{name}" TEMPLATE "{postgres.template}"'))
    try:
        yield postgres.database_url(name)
    finally:
        asyncio.run(postgres.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


def store_rep(database_url: str, sealed_with: SecretBox) -> None:
    rep = Rep(
        name="Aigerim", webhook_url="https://crm.example.kz/hook", webhook_secret=sealed_with.seal("whsec_1")
    )

    async def store() -> None:
        engine = create_async_engine(database_url, poolclass=NullPool)
        try:
            async with engine.begin() as connection:
                nurture = await connection.execution_options(schema_translate_map={None: "nurture"})
                await nurture.execute(insert(Rep.__table__).values(**rep.model_dump(exclude_none=True)))  # type: ignore[attr-defined]
        finally:
            await engine.dispose()

    asyncio.run(store())


def test_a_database_holding_sealed_secrets_and_no_key_file_stops_the_start_and_makes_no_key(
    tmp_path: Path, database: str
) -> None:
    store_rep(database, SecretBox(LOST_KEY))
    refused = leadflow_dev(
        tmp_path,
        LEADFLOW_DATABASE_URL=database,
        LEADFLOW_KAFKA_BOOTSTRAP=f"127.0.0.1:{free_port()}",  # never reached: the key stops it first
        LEADFLOW_ADMIN_TOKEN=ADMIN_TOKEN,
    )
    key_file = tmp_path.resolve() / "secret.key"
    assert refused.returncode == 1
    assert (
        f"leadflow: error: the key that sealed the 1 secrets stored in the database (reps' and"
        f" subscriptions' signing secrets, Telegram bot tokens) is missing: it was kept in {key_file}"
        " (or given in LEADFLOW_SECRET_KEY)"
    ) in refused.stdout
    assert (
        f"Restore {key_file} from the same backup as the database, or set LEADFLOW_SECRET_KEY"
        in refused.stdout
    )
    assert "/v1/reps/{id}/rotate-secret" in refused.stdout
    assert not key_file.exists(), "no new key was made"
    assert LOST_KEY not in refused.stdout + refused.stderr


def test_the_kept_or_given_key_is_taken_and_a_key_is_made_only_where_nothing_needs_another(
    tmp_path: Path, database: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("LEADFLOW_SECRET_KEY", raising=False)
    monkeypatch.delenv("LEADFLOW_SECRET_KEY_PREVIOUS", raising=False)
    made = secret_key(tmp_path, database, ADMIN_TOKEN)  # nothing sealed yet: a key is made, kept
    assert (tmp_path / "secret.key").stat().st_mode & 0o777 == 0o600
    assert secret_key(tmp_path, database, ADMIN_TOKEN) == made
    store_rep(database, SecretBox(made))
    assert secret_key(tmp_path, database, ADMIN_TOKEN) == made  # the kept one
    (tmp_path / "secret.key").unlink()
    with pytest.raises(SealingKeyMissing, match="is missing: it was kept in"):
        secret_key(tmp_path, database, ADMIN_TOKEN)
    # a pg_dump restored into a home whose first start made a key of its own
    (tmp_path / "secret.key").write_text("a-key-made-by-the-first-start-of-this-home\n")
    with pytest.raises(
        SealingKeyMissing, match=r"1 secrets .* do not open with the key kept in .*secret\.key"
    ):
        secret_key(tmp_path, database, ADMIN_TOKEN)
    (tmp_path / "secret.key").unlink()
    monkeypatch.setenv("LEADFLOW_SECRET_KEY", made)
    assert secret_key(tmp_path, database, ADMIN_TOKEN) == made  # the operator's
    assert not (tmp_path / "secret.key").exists()


def test_secrets_a_stack_sealed_before_it_kept_a_key_do_not_stop_the_start(
    tmp_path: Path, database: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Sealed with the key made from the admin token, they open without a kept key (and nurture
    seals them again with the new one as it starts)."""
    monkeypatch.delenv("LEADFLOW_SECRET_KEY", raising=False)
    monkeypatch.delenv("LEADFLOW_SECRET_KEY_PREVIOUS", raising=False)
    store_rep(database, SecretBox("dev:" + ADMIN_TOKEN))
    made = secret_key(tmp_path, database, ADMIN_TOKEN)
    assert (tmp_path / "secret.key").read_text().strip() == made
