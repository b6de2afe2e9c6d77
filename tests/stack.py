"""`leadflow dev` as a child process on chosen ports: how tests and benchmarks start the stack.
Development only (psutil is a dev dependency), so it lives here and not in a shipped package."""

import contextlib
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import psutil

from shared.dev_settings import APART, PARTS
from shared.embedded import die_with_parent, free_port
from shared.postgres_password import read_password

READY_LINE = "ready. Ctrl-C stops everything"


def free_ports() -> dict[str, int]:
    """A free port for PostgreSQL, the broker and each service process."""
    return {name: free_port() for name in ("pg", "kafka", *PARTS)}


@dataclass
class DevProcess:
    home: Path
    ports: dict[str, int] = field(default_factory=free_ports)
    only: tuple[str, ...] = ()  # every service unless named
    env: dict[str, str] = field(default_factory=dict)  # more LEADFLOW_* settings for the services
    process: subprocess.Popen[str] | None = None
    output: list[str] = field(default_factory=list)

    def url(self, service: str, path: str = "") -> str:
        return f"http://127.0.0.1:{self.ports[service]}{path}"

    @property
    def bootstrap(self) -> str:
        """The embedded broker."""
        return f"127.0.0.1:{self.ports['kafka']}"

    @property
    def database_url(self) -> str:
        """The embedded PostgreSQL's database, where every service has its schema."""
        password = read_password(self.home / "postgres")
        return f"postgresql://postgres:{password}@127.0.0.1:{self.ports['pg']}/leadflow"

    def start(self, timeout: float = 120) -> None:
        env = {k: v for k, v in os.environ.items() if not k.startswith("LEADFLOW_")}
        env |= {
            "LEADFLOW_HOME": str(self.home),
            "LEADFLOW_PG_PORT": str(self.ports["pg"]),
            "LEADFLOW_KAFKA_PORT": str(self.ports["kafka"]),
        }
        env |= {f"LEADFLOW_{p.upper().replace('-', '_')}_PORT": str(self.ports[p]) for p in PARTS}
        env["LEADFLOW_ONLY"] = ",".join(self.only)
        env |= self.env
        leadflow = Path(sys.executable).parent / "leadflow"
        # Ctrl-C'd if the test or benchmark dies without stopping it (killed, timed out): a stack
        # left running would load the machine under every later measurement. The kernel ties
        # this to the thread that starts it: started in a worker thread (`asyncio.to_thread`),
        # the stack lasts as long as that thread (an event loop's executor: until the loop closes).
        self.process = subprocess.Popen(
            [str(leadflow), "dev"],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            preexec_fn=lambda: die_with_parent(signal.SIGINT),
        )
        assert self.process.stdout is not None
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            line = self.process.stdout.readline()
            if not line:
                break
            self.output.append(line)
            if READY_LINE in line:
                return
        self.process.kill()
        raise RuntimeError("leadflow dev did not become ready:\n" + "".join(self.output))

    def service_processes(self) -> dict[str, psutil.Process]:
        assert self.process is not None
        found = {}
        for child in psutil.Process(self.process.pid).children(recursive=True):
            command = " ".join(child.cmdline())
            for part in PARTS:
                service, verb = APART.get(part, (part, "serve"))
                if f"services.{service} {verb}" in command:
                    found[part] = child
        return found

    def stop(self, timeout: float = 60) -> list[int]:
        """Ctrl-C, as a user would. Returns the pids of any process left behind."""
        assert self.process is not None
        children = psutil.Process(self.process.pid).children(recursive=True)
        self.process.send_signal(signal.SIGINT)
        try:
            self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            for process in [*children, psutil.Process(self.process.pid)]:  # the test fails; nothing is left
                with contextlib.suppress(psutil.NoSuchProcess):
                    process.kill()
            raise
        _, alive = psutil.wait_procs(children, timeout=10)
        return [p.pid for p in alive]
