"""The embedded PostgreSQL asks for its password over TCP: every account on the machine reaches
127.0.0.1, and the database holds the leads and the keys that open their sealed events. Real
servers, started as `leadflow dev` starts them."""

import asyncio
import stat
import warnings
from collections.abc import Iterator
from pathlib import Path

import asyncpg
import pytest
from sqlalchemy import make_url

from shared.embedded import free_port
from shared.embedded_postgres import EmbeddedPostgres
from shared.postgres_password import kept_password, password_file, read_password, scram_verifier
from tests.shared.private_roots import discard

# What a data directory made before this asked for: trust over TCP too (initdb --auth=trust).
TRUSTING_HBA = "local all all trust\nhost all all 127.0.0.1/32 trust\nhost all all ::1/128 trust\n"


def connects(user: str, password: str | None, port: int) -> str:
    """'ok', or the error a client gets."""

    async def attempt() -> str:
        try:
            connection = await asyncpg.connect(
                host="127.0.0.1", port=port, user=user, password=password, database="postgres"
            )
        except (asyncpg.PostgresError, asyncpg.InterfaceError) as error:
            return f"{type(error).__name__}: {error}"
        await connection.close()
        return "ok"

    return asyncio.run(attempt())


@pytest.fixture
def server(tmp_path: Path) -> Iterator[EmbeddedPostgres]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        postgres = EmbeddedPostgres(tmp_path / "postgres", free_port(), durable=False)
        postgres.start()
    yield postgres
    postgres.stop()
    discard(postgres)


def test_over_tcp_the_password_is_needed_and_the_kept_one_is_taken(server: EmbeddedPostgres) -> None:
    password = read_password(server.data_dir)
    assert password is not None and len(password) >= 40
    assert "password" in connects("postgres", None, server.port).lower()
    assert "password authentication failed" in connects("postgres", "guess", server.port)
    assert connects("postgres", password, server.port) == "ok"
    assert make_url(server.url()).password == password  # what the services are given


def test_the_password_is_readable_by_its_owner_only(server: EmbeddedPostgres) -> None:
    mode = password_file(server.data_dir).stat().st_mode
    assert stat.S_IMODE(mode) == 0o600


def test_the_password_never_reaches_the_servers_log(server: EmbeddedPostgres) -> None:
    server.stop()
    server.start()  # set again at each start
    password = read_password(server.data_dir)
    assert password is not None
    assert server.output is not None
    assert password not in server.output.path.read_text()


def test_a_data_directory_made_when_tcp_was_trusted_asks_for_the_password_after_a_restart(
    server: EmbeddedPostgres,
) -> None:
    server.stop()
    (server.data_dir / "pg_hba.conf").write_text(TRUSTING_HBA)
    password_file(server.data_dir).unlink()  # made before there was one
    server.start()
    password = read_password(server.data_dir)
    assert password is not None
    assert "password" in connects("postgres", None, server.port).lower()
    assert connects("postgres", password, server.port) == "ok"


def test_a_verifier_is_what_postgresql_computes_for_the_password(server: EmbeddedPostgres) -> None:
    """Checked by the server itself: a role given the verifier logs in with the password."""
    password = read_password(server.data_dir)

    async def make_role() -> None:
        connection = await asyncpg.connect(server.url().replace("+asyncpg", ""))
        try:
            verifier = scram_verifier("s3cret-of-the-probe", salt=b"0123456789abcdef")
            await connection.execute(f"CREATE ROLE probe LOGIN PASSWORD '{verifier}'")
        finally:
            await connection.close()

    assert password is not None
    asyncio.run(make_role())
    assert connects("probe", "s3cret-of-the-probe", server.port) == "ok"
    assert "password authentication failed" in connects("probe", "s3cret-of-the-probE", server.port)


def test_an_empty_password_file_left_by_a_start_cut_short_is_replaced(tmp_path: Path) -> None:
    """A full disk or a power cut at the first start left the file empty: every start after
    failed with "maximum recursion depth exceeded", before PostgreSQL was started."""
    data_dir = tmp_path / "postgres"
    password_file(data_dir).write_text("")
    made = kept_password(data_dir)
    assert len(made) == 43 and read_password(data_dir) == made
    assert stat.S_IMODE(password_file(data_dir).stat().st_mode) == 0o600
    assert kept_password(data_dir) == made, "kept from then on"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["postgres.password"], "nothing else left"
