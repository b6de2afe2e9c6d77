"""`migrate` (a service's, and `leadflow migrate`: the Kubernetes Job and Compose's migrate step)
says in one line which PostgreSQL it could not reach and why, without the password, instead of
a 60-line traceback ending in the asyncpg error."""

import os
import subprocess
import sys
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from sqlalchemy.engine import make_url
from typer.testing import CliRunner

from shared.cli import SERVICES, main
from shared.embedded import free_port
from tests.conftest import PostgresServer, Servers

ENTRY_POINTS = {
    "scoring migrate": (["-m", "services.scoring", "migrate"], "scoring"),
    "leadflow migrate": (["-c", "from shared.cli import main; main()", "migrate"], "leadflow"),
}


def migrate(entry_point: str, database_url: str) -> subprocess.CompletedProcess[str]:
    arguments, _ = ENTRY_POINTS[entry_point]
    env = {k: v for k, v in os.environ.items() if not k.startswith("LEADFLOW_")}
    env["LEADFLOW_DATABASE_URL"] = database_url
    return subprocess.run([sys.executable, *arguments], env=env, capture_output=True, text=True, timeout=120)


@pytest.mark.parametrize("entry_point", ENTRY_POINTS, ids=str)
def test_a_database_that_is_not_there_is_one_line_naming_it(
    postgres: PostgresServer, entry_point: str
) -> None:
    missing = make_url(postgres.database_url("no_such_database"))
    ran = migrate(entry_point, missing.render_as_string(hide_password=False))
    program = ENTRY_POINTS[entry_point][1]
    assert ran.returncode == 1
    assert ran.stderr.splitlines() == [
        f"{program}: cannot reach PostgreSQL at {missing.host}:{missing.port}/no_such_database"
        ' (InvalidCatalogNameError: database "no_such_database" does not exist)'
    ]


def test_a_server_that_is_down_is_one_line_without_the_password() -> None:
    port = free_port()
    ran = migrate("scoring migrate", f"postgresql+asyncpg://leadflow:s3cret-pw@127.0.0.1:{port}/leadflow")
    assert ran.returncode == 1
    assert ran.stderr.splitlines() == [
        f"scoring: cannot reach PostgreSQL at 127.0.0.1:{port}/leadflow (ConnectionRefusedError: [Errno 111]"
        f" Connect call failed ('127.0.0.1', {port}))"
    ]
    assert "s3cret-pw" not in ran.stderr + ran.stdout


def test_leadflow_migrate_finds_the_dev_stacks_postgresql_and_its_password(
    servers: Servers, tmp_path: Path
) -> None:
    """With no LEADFLOW_DATABASE_URL, `leadflow migrate` went to the default URL without a
    password: "password authentication failed", where the dev stack keeps its password in its
    LEADFLOW_HOME (as `leadflow seed` already read it)."""
    where = urlsplit(servers.database_url)
    home = tmp_path / "home"
    if where.password is not None:  # the embedded server's, kept as `leadflow dev` keeps it
        home.mkdir()
        (home / "postgres.password").write_text(where.password + "\n")
    env = {
        "LEADFLOW_DATABASE_URL": None,
        "LEADFLOW_PG_PORT": str(where.port),
        "LEADFLOW_DATABASE": where.path[1:],
        "LEADFLOW_HOME": str(home),
    }
    result = CliRunner().invoke(main, ["migrate"], env=env)
    assert result.exit_code == 0, result.output
    assert result.output.splitlines() == [f"{service}: migrated" for service in SERVICES]
