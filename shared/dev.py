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

from shared import topics
from shared.cli import LOCK_FILE, SERVICES, migrations_dir, read_status
from shared.dev_secret_key import secret_key
from shared.dev_settings import APART, BACKGROUND, DevSettings
from shared.embedded import EmbeddedBroker, PortTaken, claim_port
from shared.embedded_postgres import EmbeddedPostgres, ensure_database
from shared.kafka import create_topics
from shared.kafka_security import PLAINTEXT, KafkaSecurity
from shared.migrations import upgrade
from shared.part_logs import say
from shared.postgres_password import password_file
from shared.refusals import UNREACHABLE, unreachable
from shared.settings import DEV_ADMIN_TOKEN
from shared.stack_parts import ServerPart, ServicePart
from shared.supervisor import StopFlag, Supervisor, exit_cause

CONSUMER_GROUPS = ("scoring", "nurture", "metrics")
TOPICS = (*topics.DOMAIN_TOPICS, *(topics.dlq(g) for g in CONSUMER_GROUPS))
STATUS_FILE = "status.json"
NEW_DATABASE = "a new, empty database"


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
        if not (home / "postgres").exists():  # said, not only seen in a path: nothing was kept here
            say(f"{NEW_DATABASE} in {home} (LEADFLOW_HOME): no leads, sources or keys yet")
        # data kept on disk; server.log under the limit of the other logs
        postgres = EmbeddedPostgres(home / "postgres", settings.pg_port, log_max_bytes=settings.log_max_bytes)
        create_database = partial(ensure_database, postgres.url(), settings.database)
        supervisor.start(ServerPart("postgres", postgres, lambda: asyncio.run(create_database())))
        database_url = postgres.url(settings.database)
        data = home / "postgres"
        say(f"PostgreSQL  127.0.0.1:{settings.pg_port}  (data in {data}, password in {password_file(data)})")
    if bootstrap is None:
        broker = EmbeddedBroker(settings.kafka_port, home / "logs" / "broker.log", settings.log_max_bytes)
        bootstrap = broker.bootstrap
        # In memory: each start leaves it empty, so the topics are created after each start.
        supervisor.start(ServerPart("broker", broker, partial(create_all_topics, bootstrap, PLAINTEXT)))
        say(f"Kafka broker {bootstrap}  (Tansu, in memory)")
    return database_url, bootstrap


def create_all_topics(bootstrap: str, security: KafkaSecurity) -> None:
    asyncio.run(create_topics(bootstrap, TOPICS, topics.PARTITIONS, security=security))


def prepare(settings: DevSettings, home: Path, database_url: str, bootstrap: str) -> str:
    """The schemas, the sealing key and the topics; returns the key. A server that cannot be
    reached (LEADFLOW_DATABASE_URL's or LEADFLOW_KAFKA_BOOTSTRAP's) is named, never with its
    password. The key is settled before anything else is made: a database whose key is missing
    stops the start (`shared.dev_secret_key`)."""
    try:
        for service in SERVICES:
            upgrade(database_url, service, migrations_dir(service))
    except UNREACHABLE as error:
        raise RuntimeError(unreachable(database_url, error)) from error
    key = secret_key(home, database_url, settings.admin_token.get_secret_value())
    try:
        create_all_topics(bootstrap, settings.kafka_security)
    except KafkaConnectionError as error:
        raise RuntimeError(
            f"cannot reach the Kafka broker at {bootstrap} ({type(error).__name__})"
        ) from error
    say(f"schemas migrated, {len(TOPICS)} topics ready ({topics.PARTITIONS} partitions)")
    return key


def service_parts(
    settings: DevSettings, home: Path, database_url: str, bootstrap: str, secret_key: str
) -> list[ServicePart]:
    logs = home / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    env = {
        **os.environ,
        "LEADFLOW_DATABASE_URL": database_url,
        "LEADFLOW_KAFKA_BOOTSTRAP": bootstrap,
        "LEADFLOW_ADMIN_TOKEN": settings.admin_token.get_secret_value(),
        # what nurture seals reps' and subscriptions' signing secrets with: `shared.dev_secret_key`.
        # Made from the admin token, as before, changing the token left every stored secret
        # unopenable, and no hot lead reached a rep (found by a review).
        "LEADFLOW_SECRET_KEY": secret_key,
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
    # SIGHUP too: a closed terminal or a dropped SSH session stops the stack as Ctrl-C does.
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, lambda *_: stop.set())
    try:
        claim_ports(settings)
        database_url, bootstrap = start_servers(settings, home, supervisor)
        key = prepare(settings, home, database_url, bootstrap)
        services = service_parts(settings, home, database_url, bootstrap, key)
        for service in services:
            supervisor.start(service)
        wait_ready(services, stop)
        if stop.is_set():
            return 0
        for service in services:
            say(f"{service.name:<8} {service.url()}  (docs at /docs)")
        token = settings.admin_token.get_secret_value()
        say(f"admin token: {token if token == DEV_ADMIN_TOKEN else 'the one in LEADFLOW_ADMIN_TOKEN'}")
        say(f"viewer token (reads, the dashboard): {settings.viewer_token_shown}")
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
