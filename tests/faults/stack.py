"""`leadflow dev` as a user runs it, seen from outside: its output, `leadflow status`, each
service's /readyz; a part killed with SIGKILL by its pid, and the seconds until it all heals."""

import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import psutil

from shared.dev_settings import PARTS as SERVICE_PARTS
from tests.stack import DevProcess

ADMIN = {"Authorization": "Bearer dev-admin-token"}
LEADFLOW = str(Path(sys.executable).parent / "leadflow")
PARTS = ("postgres", "broker", *SERVICE_PARTS)


def wait_until(check: Callable[[], Any], timeout: float, interval: float = 0.1, what: str = "") -> Any:
    """Poll `check` until it returns something truthy; fail at the deadline."""
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"{what or 'condition'} not met within {timeout:.0f}s (last: {result!r})")
        time.sleep(interval)  # polling, with a deadline


class FaultStack:
    """One `leadflow dev` on free ports in its own LEADFLOW_HOME; `env` reaches every service."""

    def __init__(self, home: Path, env: dict[str, str]) -> None:
        self.dev = DevProcess(home, env=dict(env))
        # Acknowledge and unsubscribe links name nurture's port, which is not the default here.
        self.dev.env.setdefault("LEADFLOW_NURTURE_PUBLIC_URL", self.dev.url("nurture"))
        self.http = httpx.Client(timeout=30)  # a busy machine answers slowly
        self.probe = httpx.Client(timeout=2)  # /readyz, polled while healing
        self.processes: list[psutil.Process] = []  # every process seen, to check none is left
        self.reader: threading.Thread | None = None

    @property
    def home(self) -> Path:
        return self.dev.home

    def url(self, service: str, path: str = "") -> str:
        return self.dev.url(service, path)

    def start(self) -> float:
        """Start it (again, with the same home and ports); returns the seconds until ready."""
        started = time.monotonic()
        self.dev.start(timeout=180)
        assert self.dev.process is not None and self.dev.process.stdout is not None
        stdout = self.dev.process.stdout
        self.reader = threading.Thread(target=lambda: self.dev.output.extend(stdout), daemon=True)
        self.reader.start()
        self.remember()
        return time.monotonic() - started

    def stop(self) -> int:
        """SIGTERM to `leadflow dev`, as a service manager (or `kill`) would; its exit code."""
        assert self.dev.process is not None
        self.remember()
        self.dev.process.send_signal(signal.SIGTERM)
        code = self.dev.process.wait(60)
        if self.reader is not None:
            self.reader.join(10)
        return code

    def running(self) -> bool:
        return self.dev.process is not None and self.dev.process.poll() is None

    def output(self) -> str:
        return "".join(self.dev.output)

    def remember(self) -> None:
        if self.running():
            assert self.dev.process is not None
            self.processes += psutil.Process(self.dev.process.pid).children(recursive=True)

    def left_behind(self) -> list[int]:
        _, alive = psutil.wait_procs(self.processes, timeout=15)
        return [p.pid for p in alive]

    def status(self) -> dict[str, Any]:
        """The parts as `leadflow dev` last wrote them (what `leadflow status` reads)."""
        return dict(json.loads((self.home / "status.json").read_text())["parts"])

    def cli_status(self) -> dict[str, Any]:
        """`leadflow status --json`, run as a user runs it in another terminal."""
        env = {k: v for k, v in os.environ.items() if not k.startswith("LEADFLOW_")}
        env["LEADFLOW_HOME"] = str(self.home)
        shown = subprocess.run([LEADFLOW, "status", "--json"], env=env, capture_output=True, text=True)
        report: dict[str, Any] = json.loads(shown.stdout)
        return report | {"exit_code": shown.returncode}

    def ready(self, service: str) -> bool:
        try:
            return self.probe.get(self.url(service, "/readyz")).status_code == 200
        except httpx.HTTPError:
            return False

    def all_running(self, parts: dict[str, Any]) -> bool:
        return set(parts) == set(PARTS) and all(p["state"] == "running" and p["pid"] for p in parts.values())

    def healthy(self) -> bool:
        """Every part running (the status file) and every service's /readyz 200."""
        return self.all_running(self.status()) and all(self.ready(s) for s in SERVICE_PARTS)

    def cli_agrees(self) -> bool:
        """`leadflow status` says so too: exit code 0, every part running. (Seconds to run on a
        busy machine, so asked once the status file and /readyz say so.)"""
        shown = self.cli_status()
        return shown["exit_code"] == 0 and shown["running"] and self.all_running(shown["parts"])

    def kill(self, part: str, pid: int) -> float:
        """SIGKILL the part, which must still run under `pid`; returns when."""
        assert self.status()[part]["pid"] == pid, f"{part} is no longer pid {pid}"
        self.remember()
        os.kill(pid, signal.SIGKILL)
        return time.monotonic()

    def heal(self, part: str, killed_pid: int, killed_at: float, timeout: float) -> float:
        """Seconds from the kill until the part runs again under a new pid, every part runs (the
        status file `leadflow status` reads) and every /readyz is 200. (`leadflow status`
        itself takes seconds to start on a busy machine: ask it with `cli_agrees` after.)"""

        def back() -> bool:
            now = self.status()[part]
            return now["state"] == "running" and now["pid"] not in (None, killed_pid) and self.healthy()

        what = f"healed after {part} was killed"
        wait_until(back, killed_at + timeout - time.monotonic(), interval=0.05, what=what)
        self.remember()
        return time.monotonic() - killed_at

    def restarts(self) -> dict[str, int]:
        return {name: int(p["restarts"]) for name, p in self.status().items()}

    def post(self, service: str, path: str, body: dict[str, Any]) -> dict[str, Any]:
        """An admin POST that must succeed (setting up a scenario)."""
        answer = self.http.post(self.url(service, path), headers=ADMIN, json=body)
        assert answer.status_code in (200, 201, 202), answer.text
        return dict(answer.json())

    def get(self, service: str, path: str, **params: Any) -> Any:
        answer = self.http.get(self.url(service, path), headers=ADMIN, params=params)
        assert answer.status_code == 200, answer.text
        return answer.json()
