"""CPU used by each part of a running stack (services, broker, PostgreSQL), read from /proc
through psutil: what a lead costs, part by part, and what the stack costs doing nothing."""

import contextlib
import time
from pathlib import Path

import psutil


def part_name(process: psutil.Process) -> str:
    """ingest, scoring, nurture, hand-off (nurture's part apart), metrics, tansu, postgres,
    leadflow (the supervisor)."""
    try:
        command = process.cmdline()
    except psutil.Error:
        return "?"
    if command and command[0].startswith("postgres"):
        return "postgres"  # the server and its backends, named by their status line
    if "-m" in command:
        service, verb = command[command.index("-m") + 1 :][:2]
        return verb if verb not in ("serve", "--port") else service.removeprefix("services.")
    return Path(command[0]).name.split("-")[0] if command else "?"


class CpuMeter:
    """Seconds of CPU (user + system) by part, for the stack under `root_pid`. Children are
    looked up at each reading, so PostgreSQL backends opened meanwhile are counted."""

    def __init__(self, root_pid: int) -> None:
        self.root = psutil.Process(root_pid)
        self._processes: dict[int, psutil.Process] = {}

    def read(self) -> "Reading":
        """(monotonic time, CPU seconds by part)."""
        with contextlib.suppress(psutil.Error):
            for process in [self.root, *self.root.children(recursive=True)]:
                self._processes.setdefault(process.pid, process)
        by_part: dict[str, float] = {}
        for process in list(self._processes.values()):
            try:
                used = sum(process.cpu_times()[:2])
            except psutil.Error:
                continue  # gone: what it used before is lost with it
            name = part_name(process)
            by_part[name] = by_part.get(name, 0.0) + used
        return time.monotonic(), by_part


Reading = tuple[float, dict[str, float]]


def used_between(before: Reading, after: Reading) -> dict[str, float]:
    """CPU seconds by part between two readings."""
    return {name: after[1][name] - before[1].get(name, 0.0) for name in after[1]}
