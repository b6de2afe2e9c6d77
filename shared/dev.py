"""`leadflow dev`: the whole pipeline on this machine, started and stopped as one."""

import asyncio
import os
import signal
import subprocess
import sys
import threading
import time
import warnings
from pathlib import Path

import httpx
from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

from shared import topics
from shared.cli import SERVICES, migrations_dir
from shared.embedded import (
    EmbeddedBroker,
    EmbeddedPostgres,
    die_with_parent,
    ensure_database,
    wait_or_kill,
)
from shared.kafka import create_topics
from shared.migrations import upgrade
from shared.settings import DEV_ADMIN_TOKEN

CONSUMER_GROUPS = ("scoring", "nurture", "metrics")


class DevSettings(BaseSettings):
    """Where the dev stack keeps its data and which ports it uses (LEADFLOW_* variables)."""

    model_config = SettingsConfigDict(env_prefix="LEADFLOW_", extra="ignore")

    home: Path = Path(".leadflow")
    database_url: str | None = None
    kafka_bootstrap: str | None = None
    pg_port: int = 54329
    kafka_port: int = 9092
    database: str = "leadflow"
    admin_token: SecretStr = SecretStr(DEV_ADMIN_TOKEN)
    ports: dict[str, int] = Field(default_factory=dict)
    only: str = Field("", description="Run only these services (comma-separated), e.g. `ingest`.")

    @property
    def services(self) -> tuple[str, ...]:
        wanted = {name.strip() for name in self.only.split(",") if name.strip()}
        unknown = wanted - set(SERVICES)
        if unknown:
            raise ValueError(f"LEADFLOW_ONLY names unknown services: {', '.join(sorted(unknown))}")
        return tuple(s for s in SERVICES if s in wanted) if wanted else SERVICES

    def port_of(self, service: str) -> int:
        default = 8001 + SERVICES.index(service)
        return int(os.environ.get(f"LEADFLOW_{service.upper()}_PORT", self.ports.get(service, default)))


def say(message: str) -> None:
    print(f"leadflow: {message}", flush=True)


class DevStack:
    """Owns every process it starts and stops them in reverse order."""

    def __init__(self, settings: DevSettings) -> None:
        self.settings = settings
        self.home = settings.home.resolve()
        self.postgres: EmbeddedPostgres | None = None
        self.broker: EmbeddedBroker | None = None
        self.services: dict[str, subprocess.Popen[bytes]] = {}

    def start_servers(self) -> tuple[str, str]:
        """PostgreSQL and the broker: the configured ones, or embedded ones. Returns their URLs."""
        s = self.settings
        database_url = s.database_url
        if database_url is None:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                self.postgres = EmbeddedPostgres(self.home / "postgres", s.pg_port)
                self.postgres.start()
            asyncio.run(ensure_database(self.postgres.url(), s.database))
            database_url = self.postgres.url(s.database)
            say(f"PostgreSQL  127.0.0.1:{s.pg_port}  (data in {self.home / 'postgres'})")
        bootstrap = s.kafka_bootstrap
        if bootstrap is None:
            self.broker = EmbeddedBroker(s.kafka_port, self.home / "logs" / "broker.log")
            self.broker.start()
            bootstrap = self.broker.bootstrap
            say(f"Kafka broker {bootstrap}  (Tansu, in memory)")
        return database_url, bootstrap

    def prepare(self, database_url: str, bootstrap: str) -> None:
        for service in SERVICES:
            upgrade(database_url, service, migrations_dir(service))
        names = [*topics.DOMAIN_TOPICS, *(topics.dlq(g) for g in CONSUMER_GROUPS)]
        asyncio.run(create_topics(bootstrap, names, topics.PARTITIONS))
        say(f"schemas migrated, {len(names)} topics ready ({topics.PARTITIONS} partitions)")

    def start_services(self, database_url: str, bootstrap: str) -> None:
        logs = self.home / "logs"
        logs.mkdir(parents=True, exist_ok=True)
        env = {
            **os.environ,
            "LEADFLOW_DATABASE_URL": database_url,
            "LEADFLOW_KAFKA_BOOTSTRAP": bootstrap,
            "LEADFLOW_ADMIN_TOKEN": self.settings.admin_token.get_secret_value(),
        }
        for service in self.settings.services:
            command = [
                sys.executable,
                "-m",
                f"services.{service}",
                "serve",
                "--port",
                str(self.settings.port_of(service)),
            ]
            log = (logs / f"{service}.log").open("ab")
            self.services[service] = subprocess.Popen(  # noqa: S603 - our own interpreter and module
                command,
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                preexec_fn=die_with_parent,
            )

    def wait_ready(self, stop: threading.Event, timeout: float = 60) -> None:
        pending = set(self.settings.services)
        deadline = time.monotonic() + timeout
        with httpx.Client(timeout=1.0) as client:
            while pending:
                for service in sorted(pending):
                    self._check_alive(service)
                    url = f"http://127.0.0.1:{self.settings.port_of(service)}/readyz"
                    try:
                        if client.get(url).status_code == 200:
                            pending.discard(service)
                    except httpx.HTTPError:
                        pass
                if stop.is_set():
                    return
                if pending and time.monotonic() > deadline:
                    raise TimeoutError(f"not ready after {timeout:.0f}s: {', '.join(sorted(pending))}")
                if pending:
                    stop.wait(0.1)  # polling /readyz until every service answers 200

    def _check_alive(self, service: str) -> None:
        code = self.services[service].poll()
        if code is not None:
            log = self.home / "logs" / f"{service}.log"
            raise RuntimeError(f"{service} exited with code {code}; see {log}")

    def watch(self, stop: threading.Event) -> None:
        """Block until asked to stop or until a service dies."""
        while not stop.wait(0.5):
            for service in self.settings.services:
                self._check_alive(service)

    def stop(self) -> None:
        for process in self.services.values():
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        for process in self.services.values():
            wait_or_kill(process, timeout=15)
        if self.broker is not None:
            self.broker.stop()
        if self.postgres is not None:
            self.postgres.stop()


def run_dev(settings: DevSettings) -> int:
    stack = DevStack(settings)
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    try:
        database_url, bootstrap = stack.start_servers()
        stack.prepare(database_url, bootstrap)
        stack.start_services(database_url, bootstrap)
        stack.wait_ready(stop)
        if stop.is_set():
            return 0
        for service in settings.services:
            say(f"{service:<8} http://127.0.0.1:{settings.port_of(service)}  (docs at /docs)")
        token = settings.admin_token.get_secret_value()
        say(f"admin token: {token if token == DEV_ADMIN_TOKEN else 'the one in LEADFLOW_ADMIN_TOKEN'}")
        say(f"logs in {stack.home / 'logs'}; ready. Ctrl-C stops everything.")
        stack.watch(stop)
        return 0
    except Exception as error:
        say(f"error: {error}")
        return 1
    finally:
        say("stopping")
        stack.stop()
        say("stopped")
