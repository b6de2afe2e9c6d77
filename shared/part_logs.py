"""What the parts of `leadflow dev` write, kept in their logs: each part's output comes through
a pipe to a thread of the supervisor, which writes whole lines and starts the file again past
its size limit, so that nothing written is lost and no log outgrows `LEADFLOW_LOG_MAX_MB`."""

import os
import threading
import time
from pathlib import Path
from typing import BinaryIO


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
