"""`leadflow dev`: the whole pipeline on this machine, started as one; a part that dies is restarted."""

import asyncio
import fcntl
import json
import os
import signal
import time
from functools import partial
from pathlib import Path

import httpx
from aiokafka.errors import KafkaConnectionError
from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from shared import topics
from shared.cli import LOCK_FILE, SERVICES, migrations_dir, read_status
from shared.embedded import EmbeddedBroker, PortTaken, claim_port, dialled
from shared.embedded_postgres import EmbeddedPostgres, ensure_database
from shared.kafka import create_topics
from shared.migrations import upgrade
from shared.part_logs import say
from shared.refusals import UNREACHABLE, unreachable
from shared.settings import DEV_ADMIN_TOKEN, DEV_VIEWER_TOKEN
from shared.stack_parts import ServerPart, ServicePart
from shared.supervisor import StopFlag, Supervisor, exit_cause

CONSUMER_GROUPS = ("scoring", "nurture", "metrics")
TOPICS = (*topics.DOMAIN_TOPICS, *(topics.dlq(g) for g in CONSUMER_GROUPS))
STATUS_FILE = "status.json"
# Parts of a service in a process of their own (part → service, its command): a hot lead's
# hand-off to its rep never waits for nurture's follow-up work, on the event loop or the CPU.
APART = {"hand-off": ("nurture", "hand-off")}
PARTS = (*SERVICES, *APART)
# Niceness of the processes off a hot lead's way to its rep: metrics' read model and nurture's
# follow-up yield the CPU to the hand-off path when both want it, and catch up when it is free.
BACKGROUND = {"metrics": 10, "nurture": 10}


class DevSettings(BaseSettings):
    """Where the dev stack keeps its data and which ports it uses (LEADFLOW_* variables)."""

    model_config = SettingsConfigDict(env_prefix="LEADFLOW_", extra="ignore", hide_input_in_errors=True)

    home: Path = Path(".leadflow")
    host: str = "127.0.0.1"  # where the services listen; the servers stay on 127.0.0.1
    database_url: str | None = None
    kafka_bootstrap: str | None = None
    pg_port: int = Field(54329, ge=1, le=65535)
    kafka_port: int = Field(9092, ge=1, le=65535)
    database: str = "leadflow"
    admin_token: SecretStr = SecretStr(DEV_ADMIN_TOKEN)
    ports: dict[str, int] = Field(default_factory=dict)
    only: str = Field("", description="Run only these services (comma-separated), e.g. `ingest`.")
    # Each part's log is kept under this; past it, it is moved to <part>.log.1 and starts again.
    log_max_mb: int = Field(100, ge=1)

    @property
    def log_max_bytes(self) -> int:
        return self.log_max_mb * 1024 * 1024

    @field_validator("only")
    @classmethod
    def _known_services(cls, value: str) -> str:
        # Refused before PostgreSQL and the broker start, not after (seconds later).
        unknown = {name.strip() for name in value.split(",") if name.strip()} - set(SERVICES)
        if unknown:
            raise ValueError(
                f"names unknown services: {', '.join(sorted(unknown))} (known: {', '.join(SERVICES)})"
            )
        return value

    @model_validator(mode="after")
    def _ports_of_the_parts(self) -> "DevSettings":
        for part in PARTS:  # read by port_of, from the environment
            variable = f"LEADFLOW_{part.upper().replace('-', '_')}_PORT"
            value = os.environ.get(variable)
            if value is not None and not (value.strip().isdigit() and 1 <= int(value) <= 65535):
                raise ValueError(f"{variable} must be a TCP port, 1 to 65535")
        return self

    @property
    def services(self) -> tuple[str, ...]:
        wanted = {name.strip() for name in self.only.split(",") if name.strip()}
        unknown = wanted - set(SERVICES)
        if unknown:
            raise ValueError(f"LEADFLOW_ONLY names unknown services: {', '.join(sorted(unknown))}")
        return tuple(s for s in SERVICES if s in wanted) if wanted else SERVICES

    @property
    def parts(self) -> tuple[str, ...]:
        """The services, and the parts of them that run apart."""
        return (*self.services, *(part for part, (service, _) in APART.items() if service in self.services))

    @property
    def stack_database_url(self) -> str:
        """The database `leadflow dev` runs on: the configured one, or its embedded PostgreSQL."""
        return self.database_url or f"postgresql+asyncpg://postgres@127.0.0.1:{self.pg_port}/{self.database}"

    def variable_of(self, port: int) -> str:
        """The setting that chose `port`."""
        named = {self.pg_port: "LEADFLOW_PG_PORT", self.kafka_port: "LEADFLOW_KAFKA_PORT"}
        named |= {self.port_of(p): f"LEADFLOW_{p.upper().replace('-', '_')}_PORT" for p in self.parts}
        return named.get(port, "its port setting")

    def port_of(self, part: str) -> int:
        default = 8001 + PARTS.index(part)
        variable = f"LEADFLOW_{part.upper().replace('-', '_')}_PORT"
        return int(os.environ.get(variable, self.ports.get(part, default)))

    def url_of(self, part: str) -> str:
        """Where the services and this machine reach `part`: its port on LEADFLOW_HOST."""
        return f"http://{dialled(self.host)}:{self.port_of(part)}"


def claim_ports(settings: DevSettings) -> None:
    """Raise PortTaken for a port of the broker or a service that another program holds, before
    anything starts: it was said only once PostgreSQL had started (a new home's initdb first)
    and every schema was migrated. PostgreSQL checks its own as it starts, once it has stopped
    a server this home left running, which holds it."""
    if settings.kafka_bootstrap is None:
        claim_port(settings.kafka_port, "the Kafka broker")
    for part in settings.parts:
        claim_port(settings.port_of(part), part, host=settings.host)


def start_servers(settings: DevSettings, home: Path, supervisor: Supervisor) -> tuple[str, str]:
    """PostgreSQL and the broker: the configured ones, or embedded ones. Returns their URLs."""
    database_url, bootstrap = settings.database_url, settings.kafka_bootstrap
    if database_url is None:
        # data kept on disk; server.log under the limit of the other logs
        postgres = EmbeddedPostgres(home / "postgres", settings.pg_port, log_max_bytes=settings.log_max_bytes)
        create_database = partial(ensure_database, postgres.url(), settings.database)
        supervisor.start(ServerPart("postgres", postgres, lambda: asyncio.run(create_database())))
        database_url = postgres.url(settings.database)
        say(f"PostgreSQL  127.0.0.1:{settings.pg_port}  (data in {home / 'postgres'})")
    if bootstrap is None:
        broker = EmbeddedBroker(settings.kafka_port, home / "logs" / "broker.log", settings.log_max_bytes)
        bootstrap = broker.bootstrap
        # In memory: each start leaves it empty, so the topics are created after each start.
        supervisor.start(ServerPart("broker", broker, partial(create_all_topics, bootstrap)))
        say(f"Kafka broker {bootstrap}  (Tansu, in memory)")
    return database_url, bootstrap


def create_all_topics(bootstrap: str) -> None:
    asyncio.run(create_topics(bootstrap, TOPICS, topics.PARTITIONS))


def prepare(database_url: str, bootstrap: str) -> None:
    """The schemas and topics; a server that cannot be reached (LEADFLOW_DATABASE_URL's or
    LEADFLOW_KAFKA_BOOTSTRAP's) is named, never with its password."""
    try:
        for service in SERVICES:
            upgrade(database_url, service, migrations_dir(service))
    except UNREACHABLE as error:
        raise RuntimeError(unreachable(database_url, error)) from error
    try:
        create_all_topics(bootstrap)
    except KafkaConnectionError as error:
        raise RuntimeError(
            f"cannot reach the Kafka broker at {bootstrap} ({type(error).__name__})"
        ) from error
    say(f"schemas migrated, {len(TOPICS)} topics ready ({topics.PARTITIONS} partitions)")


def service_parts(settings: DevSettings, home: Path, database_url: str, bootstrap: str) -> list[ServicePart]:
    logs = home / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    env = {
        **os.environ,
        "LEADFLOW_DATABASE_URL": database_url,
        "LEADFLOW_KAFKA_BOOTSTRAP": bootstrap,
        "LEADFLOW_ADMIN_TOKEN": settings.admin_token.get_secret_value(),
        # Tansu holds every fetch for its whole wait: idle consumers pause and wait for the
        # doorbell instead of fetching every few milliseconds (most of the idle stack's CPU,
        # and of a busy one's broker: the consumers of quiet topics kept fetching).
        "LEADFLOW_CONSUMER_IDLE_PAUSE_SECONDS": os.environ.get("LEADFLOW_CONSUMER_IDLE_PAUSE_SECONDS", "2"),
        # where scoring and nurture ask ingest for lead keys, and metrics' health asks the others
        # for their outbox and webhook figures: where they listen (LEADFLOW_HOST)
        **{f"LEADFLOW_{s.upper()}_URL": settings.url_of(s) for s in SERVICES},
        # where the links in webhooks and emails (acknowledge, unsubscribe) reach nurture: the
        # address and port it listens on here, unless the operator says where reps reach it
        "LEADFLOW_NURTURE_PUBLIC_URL": os.environ.get(
            "LEADFLOW_NURTURE_PUBLIC_URL", settings.url_of("nurture")
        ),
    }
    if "hand-off" in settings.parts:
        env["LEADFLOW_NURTURE_HAND_OFF_APART"] = "true"
    parts = []
    for part in settings.parts:
        service, command = APART.get(part, (part, "serve"))
        port, log, niceness = settings.port_of(part), logs / f"{part}.log", BACKGROUND.get(part, 0)
        parts.append(
            ServicePart(
                part,
                port,
                env,
                log,
                niceness,
                service=service,
                command=command,
                log_max_bytes=settings.log_max_bytes,
            )
        )
    return parts


def wait_ready(services: list[ServicePart], stop: StopFlag, timeout: float = 60) -> None:
    """Until every service's /readyz answers 200; a service that exits meanwhile is an error."""
    pending = {s.name: s for s in services}
    deadline = time.monotonic() + timeout
    with httpx.Client(timeout=1.0, trust_env=False) as client:  # its own children: no proxy
        while pending and not stop.is_set():
            for name, service in sorted(pending.items()):
                if (code := service.poll()) is not None:
                    service.output.drain(5)  # its last words may still be on their way to its log
                    why = last_words(service.log)
                    raise RuntimeError(f"{name} exited ({exit_cause(code)}){why}; see {service.log}")
                try:
                    if client.get(service.url("/readyz")).status_code == 200:
                        del pending[name]
                except httpx.HTTPError:
                    pass
            if pending and time.monotonic() > deadline:
                raise TimeoutError(f"not ready after {timeout:.0f}s: {', '.join(sorted(pending))}")
            if pending:
                stop.wait(0.1)  # polling /readyz until every service answers 200


def hold_home(home: Path) -> int | None:
    """A lock on `home` for this run (its descriptor), or None when another `leadflow dev` holds
    it: a second one there took the first's PostgreSQL for a leftover, stopped it and wrote over
    its status. The kernel lets go when this process ends, even by kill -9; children, started
    with close_fds, never hold it."""
    home.mkdir(parents=True, exist_ok=True)
    lock = os.open(home / LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(lock)
        return None
    return lock


def last_words(log: Path) -> str:
    """ ": <why>" from the end of a service's log: its last error, or a plain line (a refused
    setting, a traceback's last line); "" if it wrote neither."""
    with open(log, "rb") as file:
        file.seek(max(file.seek(0, os.SEEK_END) - 8192, 0))
        lines = file.read().decode(errors="replace").splitlines()
    for line in reversed(lines):
        try:
            record = json.loads(line)
        except ValueError:
            if line.strip():
                return f": {line.strip()}"
            continue
        if isinstance(record, dict) and record.get("level") in ("ERROR", "CRITICAL"):
            return f": {record.get('message')}"
    return ""


def run_dev(settings: DevSettings) -> int:
    home = settings.home.resolve()
    try:
        lock = hold_home(home)
    except OSError as error:  # a file there, a folder of another user, a read-only disk
        say(f"error: cannot keep the stack's data in LEADFLOW_HOME={home} ({error.strerror})")
        return 1
    if lock is None:
        status = read_status(home / STATUS_FILE)
        pid = f" (pid {status['pid']})" if status["running"] else ""
        say(f"error: leadflow dev is already running in {home}{pid}; stop it, or use another LEADFLOW_HOME")
        return 1
    supervisor = Supervisor(home / STATUS_FILE)
    stop = StopFlag()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    try:
        claim_ports(settings)
        database_url, bootstrap = start_servers(settings, home, supervisor)
        prepare(database_url, bootstrap)
        services = service_parts(settings, home, database_url, bootstrap)
        for service in services:
            supervisor.start(service)
        wait_ready(services, stop)
        if stop.is_set():
            return 0
        for service in services:
            say(f"{service.name:<8} {service.url()}  (docs at /docs)")
        token = settings.admin_token.get_secret_value()
        say(f"admin token: {token if token == DEV_ADMIN_TOKEN else 'the one in LEADFLOW_ADMIN_TOKEN'}")
        viewer = DEV_VIEWER_TOKEN
        if os.environ.get("LEADFLOW_VIEWER_TOKEN"):
            viewer = "the one in LEADFLOW_VIEWER_TOKEN"
        say(f"viewer token (reads, the dashboard): {viewer}")
        say(f"logs in {home / 'logs'}; ready. Ctrl-C stops everything.")
        supervisor.run(stop)
        return 0
    except PortTaken as error:  # another leadflow dev (of another home), or anything else
        say(f"error: {error}; stop it, or choose another port with {settings.variable_of(error.port)}")
        return 1
    except Exception as error:
        say(f"error: {error}")
        return 1
    finally:
        say("stopping")
        supervisor.stop()
        os.close(lock)  # only once everything has stopped: a new start may take the home now
        say("stopped")
