"""The supervisor of `leadflow dev`: parts started in order, any that dies restarted after a
backoff (1 s doubling to 30 s), all stopped in reverse; its state in a file for `leadflow status`.

Hand-written rather than supervisord or circus: those run a daemon of their own from a
generated config and cannot start a part only once the one before it is ready (PostgreSQL
migrated, the broker's topics created), which is most of what this has to do."""

import json
import os
import queue
import signal
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from shared.part_logs import say
from shared.stack_parts import Part, ServicePart

POLL_SECONDS = 0.25
FIRST_DELAY, MAX_DELAY = 1.0, 30.0
STABLE_SECONDS = 60.0  # a part up this long starts its backoff again from FIRST_DELAY
DRAIN_SECONDS = 5.0  # at the end, for what the parts wrote last to reach their logs


class StopFlag:
    """Ctrl-C and SIGTERM, told to the main loop. A signal handler runs in the main thread
    wherever it was, even inside a threading.Event's lock (waiting, or leaving a wait), so an
    Event set from a handler can deadlock; it did, and `leadflow dev` then ignored every
    signal. queue.SimpleQueue's put is safe in a signal handler (its documentation says so)."""

    def __init__(self) -> None:
        self._signals: queue.SimpleQueue[None] = queue.SimpleQueue()
        self._set = False

    def set(self) -> None:
        """Safe in a signal handler."""
        self._signals.put(None)

    def is_set(self) -> bool:
        return self.wait(0)

    def wait(self, timeout: float) -> bool:
        """Whether the flag is set, waiting up to `timeout` seconds for it (main thread only)."""
        if not self._set:
            try:
                self._signals.get(timeout=timeout) if timeout > 0 else self._signals.get_nowait()
                self._set = True
            except queue.Empty:
                pass
        return self._set


def restart_delay(failures: int) -> float:
    """Seconds to wait before restarting a part that died `failures` times in a row before."""
    return min(FIRST_DELAY * 2 ** min(failures, 16), MAX_DELAY)


def exit_cause(code: int) -> str:
    """How a process ended, as Popen.returncode tells it: "killed by SIGKILL", "exit code 1"."""
    if code >= 0:
        return f"exit code {code}"
    try:
        return f"killed by {signal.Signals(-code).name}"
    except ValueError:
        return f"killed by signal {-code}"


@dataclass
class Supervised:
    """What the supervisor knows of one part."""

    part: Part
    state: str = "stopped"  # starting | running | restarting | stopped
    restarts: int = 0
    failures: int = 0  # deaths in a row, each within STABLE_SECONDS of its start
    last_exit: str | None = None
    up_since: float = 0.0  # monotonic
    started_at: float | None = None  # wall clock, for the uptime `leadflow status` shows
    due: float = 0.0  # monotonic time of the next restart


class Supervisor:
    """Starts parts in order, restarts any that dies after a backoff, stops them in reverse.

    Everything runs in the main thread: a part started from another thread would get its
    death signal (PR_SET_PDEATHSIG) as soon as that thread ended. Each change is written
    to `status_path` for `leadflow status`."""

    def __init__(self, status_path: Path, clock: Callable[[], float] = time.monotonic) -> None:
        self.status_path = status_path
        self.clock = clock
        self.parts: list[Supervised] = []
        self._status_failing = False  # said once, until a write works again

    def start(self, part: Part) -> None:
        """Start a new part now (blocking); raises if it does not come up."""
        entry = Supervised(part, state="starting")
        self.parts.append(entry)
        self.write_status()
        part.start()
        self._running(entry)

    def run(self, stop: StopFlag) -> None:
        """Watch and restart until `stop` is set."""
        while not stop.wait(POLL_SECONDS):
            for entry in self.parts:
                if not stop.is_set():
                    self.check(entry)

    def check(self, entry: Supervised) -> None:
        """Notice a death, or restart a part whose backoff has run out."""
        now = self.clock()
        if entry.state == "running" and (code := entry.part.poll()) is not None:
            if now - entry.up_since >= STABLE_SECONDS:
                entry.failures = 0
            self._schedule(entry, now, exit_cause(code), "exited")
        elif entry.state == "restarting" and now >= entry.due:
            entry.restarts += 1
            try:
                entry.part.start()
            except Exception as error:
                entry.part.stop()
                self._schedule(entry, self.clock(), str(error), "did not start")
                return
            self._running(entry)
            say(f"{entry.part.name} running again (pid {self._pid(entry)})")

    def stop(self) -> None:
        """Stop every part, services first (all at once), then the broker, then PostgreSQL."""
        for entry in self.parts:
            entry.state = "stopped"
            if isinstance(entry.part, ServicePart):
                entry.part.terminate()
        for entry in reversed(self.parts):
            entry.part.stop()
        deadline = time.monotonic() + DRAIN_SECONDS
        for entry in self.parts:
            if entry.part.output is not None:
                entry.part.output.drain(max(deadline - time.monotonic(), 0))
        self.write_status()

    def _running(self, entry: Supervised) -> None:
        entry.state, entry.up_since, entry.started_at = "running", self.clock(), time.time()
        self.write_status()

    def _schedule(self, entry: Supervised, now: float, cause: str, what: str) -> None:
        delay = restart_delay(entry.failures)
        entry.failures += 1
        entry.state, entry.due, entry.last_exit, entry.started_at = "restarting", now + delay, cause, None
        self.write_status()  # before saying so: what is said is already in `leadflow status`
        say(f"{entry.part.name} {what} ({cause}); restart {entry.restarts + 1} in {delay:g}s")

    @staticmethod
    def _pid(entry: Supervised) -> int | None:
        process = entry.part.process
        return None if process is None or process.poll() is not None else process.pid

    def write_status(self) -> None:
        """Replace the status file in one step (write a temporary file, then rename it). Best
        effort: on a full disk its write failed, and the error left the supervisor, which
        stopped every part and restarted none once space was freed (found by a review)."""
        try:
            self._write_status()
        except OSError as error:
            if not self._status_failing:
                say(f"cannot write {self.status_path} for `leadflow status` ({error}); supervising on")
            self._status_failing = True
        else:
            if self._status_failing:
                say(f"{self.status_path} written again")
            self._status_failing = False

    def _write_status(self) -> None:
        parts = {
            e.part.name: {
                "state": e.state,
                "pid": self._pid(e) if e.state == "running" else None,
                "restarts": e.restarts,
                "last_exit": e.last_exit,
                "started_at": e.started_at,
            }
            for e in self.parts
        }
        status = {"pid": os.getpid(), "updated_at": time.time(), "parts": parts}
        self.status_path.parent.mkdir(parents=True, exist_ok=True)
        temporary = self.status_path.with_name(f".{self.status_path.name}.tmp")
        temporary.write_text(json.dumps(status, indent=2))
        temporary.replace(self.status_path)
