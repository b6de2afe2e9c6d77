"""The processes `leadflow dev` supervises: its embedded servers, and the services."""

import os
import signal
import subprocess
import sys
import warnings
from collections.abc import Callable
from pathlib import Path

from shared.embedded import EmbeddedBroker, claim_port, dialled, die_with_parent, wait_or_kill
from shared.embedded_postgres import EmbeddedPostgres
from shared.part_logs import PartLog


class Part:
    """One process of the stack: start() returns once it is up (or raises), poll() gives its
    exit code once it has died, stop() ends it (and is harmless when it is not running)."""

    name = ""

    @property
    def process(self) -> subprocess.Popen[bytes] | None:
        raise NotImplementedError

    def start(self) -> None:
        raise NotImplementedError

    def stop(self) -> None:
        raise NotImplementedError

    @property
    def output(self) -> PartLog | None:
        """Where its output goes, if this process writes it."""
        return None

    def poll(self) -> int | None:
        return None if self.process is None else self.process.poll()


class ServerPart(Part):
    """An embedded server, and what must follow each of its starts."""

    def __init__(
        self, name: str, server: EmbeddedPostgres | EmbeddedBroker, then: Callable[[], None]
    ) -> None:
        self.name, self.server, self.then = name, server, then

    @property
    def process(self) -> subprocess.Popen[bytes] | None:
        return self.server.process

    @property
    def output(self) -> PartLog | None:
        return self.server.output

    def start(self) -> None:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # embedded-postgres' own warnings
            self.server.start()
        self.then()

    def stop(self) -> None:
        self.server.stop()


class ServicePart(Part):
    """One service process (`python -m services.<service> <command>`, the service named `name`
    and `serve` unless told); its output goes to `log`, kept under `log_max_bytes` (0: no limit)."""

    def __init__(
        self,
        name: str,
        port: int,
        env: dict[str, str],
        log: Path,
        niceness: int = 0,
        *,
        service: str | None = None,
        command: str = "serve",
        log_max_bytes: int = 0,
    ) -> None:
        self.name, self.port, self.env, self.log, self.niceness = name, port, env, log, niceness
        self.service, self.command = service or name, command
        self._output = PartLog(log, log_max_bytes)
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def process(self) -> subprocess.Popen[bytes] | None:
        return self._process

    @property
    def output(self) -> PartLog:
        return self._output

    @property
    def host(self) -> str:
        """The address it listens on, as it reads it from its environment."""
        return self.env.get("LEADFLOW_HOST", "127.0.0.1")

    def url(self, path: str = "") -> str:
        """Where this machine reaches it: on its address, not 127.0.0.1, which a service bound to
        a specific address (LEADFLOW_HOST=192.0.2.7) does not answer."""
        return f"http://{dialled(self.host)}:{self.port}{path}"

    def start(self) -> None:
        claim_port(self.port, self.name, host=self.host)
        command = [sys.executable, "-m", f"services.{self.service}", self.command, "--port", str(self.port)]
        output = self._output.pipe()
        try:
            self._process = subprocess.Popen(  # noqa: S603 - our own interpreter and module
                command,
                env=self.env,
                stdout=output,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                preexec_fn=self._prepare,
            )
        finally:
            os.close(output)

    def _prepare(self) -> None:
        """In the child before it runs: its CPU priority, and its end with ours."""
        os.nice(self.niceness)
        die_with_parent()

    def terminate(self) -> None:
        """Ask it to stop without waiting, so that every service shuts down at once."""
        if self._process is not None and self._process.poll() is None:
            self._process.send_signal(signal.SIGTERM)

    def stop(self) -> None:
        if self._process is not None:
            self.terminate()
            wait_or_kill(self._process, timeout=15)
