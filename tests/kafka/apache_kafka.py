"""Apache Kafka for the tests: one KRaft node (broker and controller) run from the jars that Maven
resolves for tests/kafka/pom.xml, cached in .leadflow/kafka-jars/<version>; and the embedded
Tansu broker behind the same face, so every test runs on both."""

import asyncio
import base64
import os
import re
import shutil
import signal
import subprocess
import tempfile
import uuid
from pathlib import Path
from typing import Protocol

from aiokafka.client import AIOKafkaClient
from aiokafka.errors import KafkaError

from shared.embedded import EmbeddedBroker, die_with_parent, free_port, stop_process
from tests.conftest import eventually

VERSION = "4.1.1"
"""The Kafka release the tests run (LEADFLOW_TEST_KAFKA_VERSION chooses another)."""
POM = Path(__file__).with_name("pom.xml")
JAR_CACHE = Path(__file__).resolve().parents[2] / ".leadflow" / "kafka-jars"


class Unavailable(Exception):
    """Apache Kafka cannot run on this machine; the message says why."""


class Broker(Protocol):
    name: str

    @property
    def bootstrap(self) -> str: ...

    async def start(self) -> None: ...

    async def stop(self) -> None: ...

    async def lose_everything(self) -> None:
        """Stop, forget every topic, offset and group, and start again on the same port."""


def kafka_jars() -> Path:
    """LEADFLOW_TEST_KAFKA_JARS (say the libs/ of an unpacked Kafka release), else the jars of
    kafka_2.13 at VERSION and its runtime dependencies, copied by Maven once."""
    if given := os.environ.get("LEADFLOW_TEST_KAFKA_JARS"):
        return Path(given)
    version = os.environ.get("LEADFLOW_TEST_KAFKA_VERSION", VERSION)
    target = JAR_CACHE / version
    if (target / "complete").exists():
        return target
    mvn = shutil.which("mvn")
    if mvn is None:
        raise Unavailable("no mvn on PATH to resolve the Apache Kafka jars (or set LEADFLOW_TEST_KAFKA_JARS)")
    JAR_CACHE.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{version}-", dir=JAR_CACHE))
    command = [mvn, "-q", "-B", "-U", "-f", str(POM), "dependency:copy-dependencies"]  # -U: retry a failure
    command += [f"-Dkafka.version={version}", f"-DoutputDirectory={staging}"]
    result = subprocess.run(command, capture_output=True, text=True, check=False, timeout=900)
    if result.returncode != 0:
        shutil.rmtree(staging, ignore_errors=True)
        raise Unavailable(
            f"Maven could not resolve org.apache.kafka:kafka_2.13:{version} ({_cause(result)}); "
            f"`mvn -f {POM.relative_to(POM.parents[2])} dependency:resolve` shows why"
        )
    (staging / "complete").touch()
    try:
        staging.rename(target)
    except OSError:  # another run resolved them first
        shutil.rmtree(staging, ignore_errors=True)
    return target


def _cause(result: subprocess.CompletedProcess[str]) -> str:
    """The end of Maven's first error ("Name or service not known"): its beginning names hosts."""
    lines = re.sub(r"\x1b\[[0-9;]*m", "", result.stdout + result.stderr).splitlines()
    errors = [line.removeprefix("[ERROR]").strip() for line in lines if line.startswith("[ERROR]")]
    first = next((e for e in errors if e), "no error shown").removesuffix(" -> [Help 1]")
    return first.rsplit(": ", 1)[-1][-200:]


def java() -> str:
    """The java that runs Kafka 4 (17 or newer)."""
    path = shutil.which("java")
    if path is None:
        raise Unavailable("no java on PATH (Apache Kafka 4 needs Java 17 or newer)")
    shown = subprocess.run([path, "-version"], capture_output=True, text=True, check=False).stderr
    found = re.search(r'version "(\d+)', shown)
    if found is None or int(found.group(1)) < 17:
        raise Unavailable(f"Apache Kafka 4 needs Java 17 or newer; {path} is {shown.splitlines()[:1]}")
    return path


def cluster_id() -> str:
    """A KRaft cluster id as StorageTool random-uuid makes one: a random UUID in base64url
    without padding, never starting with "-" (it would read as an option)."""
    while (made := base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")).startswith("-"):
        pass
    return made


LOG4J2 = """\
appender.out.type = Console
appender.out.name = OUT
appender.out.layout.type = PatternLayout
appender.out.layout.pattern = [%d] %p %m (%c)%n
rootLogger.level = INFO
rootLogger.appenderRef.out.ref = OUT
"""
"""Kafka 4 logs with log4j2: INFO to standard output, which goes to kafka.log."""


class ApacheKafka:
    """One Apache Kafka node, broker and controller, on 127.0.0.1:`port`; its data, settings
    and log (kafka.log) in `home`. As in docker-compose.yml: topics are never auto-created."""

    name = "apache-kafka"

    def __init__(self, java: str, jars: Path, home: Path) -> None:
        self.java, self.jars, self.home = java, jars, home
        self.port, self.controller_port = free_port(), free_port()
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def data(self) -> Path:
        return self.home / "data"

    def settings(self) -> str:
        listeners = f"PLAINTEXT://127.0.0.1:{self.port},CONTROLLER://127.0.0.1:{self.controller_port}"
        values = {
            "process.roles": "broker,controller",
            "node.id": "1",
            "controller.quorum.voters": f"1@127.0.0.1:{self.controller_port}",
            "listeners": listeners,
            "advertised.listeners": f"PLAINTEXT://127.0.0.1:{self.port}",
            "listener.security.protocol.map": "PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT",
            "inter.broker.listener.name": "PLAINTEXT",
            "controller.listener.names": "CONTROLLER",
            "log.dirs": str(self.data),
            "auto.create.topics.enable": "false",
            "num.partitions": "1",
            "offsets.topic.replication.factor": "1",
            "offsets.topic.num.partitions": "4",  # the default 50 only slows the first group join
            "transaction.state.log.replication.factor": "1",
            "transaction.state.log.min.isr": "1",
            "share.coordinator.state.topic.replication.factor": "1",
            "share.coordinator.state.topic.min.isr": "1",
            "group.initial.rebalance.delay.ms": "0",
        }
        return "".join(f"{key}={value}\n" for key, value in values.items())

    def _java_command(self, main: str, *args: str) -> list[str]:
        heap = ["-Xms256m", "-Xmx512m", "-XX:TieredStopAtLevel=1"]  # small and quick to start
        logging = f"-Dlog4j2.configurationFile={self.home / 'log4j2.properties'}"
        return [self.java, *heap, "-Djava.awt.headless=true", logging, "-cp", f"{self.jars}/*", main, *args]

    def _configure(self) -> Path:
        """Write the settings; format the storage of a new cluster. Returns the settings file."""
        self.home.mkdir(parents=True, exist_ok=True)
        config = self.home / "server.properties"
        config.write_text(self.settings())
        (self.home / "log4j2.properties").write_text(LOG4J2)
        if not (self.data / "meta.properties").exists():
            format_storage = self._java_command("kafka.tools.StorageTool", "format", "-t", cluster_id())
            result = subprocess.run(
                [*format_storage, "-c", str(config)], capture_output=True, text=True, check=False
            )
            if result.returncode != 0:
                raise RuntimeError(f"formatting Kafka's storage failed: {result.stderr or result.stdout}")
        return config

    async def start(self) -> None:
        config = await asyncio.to_thread(self._configure)
        # Started from this thread: die_with_parent ties the node to the thread that forks it.
        with (self.home / "kafka.log").open("ab") as log:
            self.process = subprocess.Popen(
                self._java_command("kafka.Kafka", str(config)),
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                preexec_fn=die_with_parent,
            )
        await eventually(self._answers, timeout=90, interval=0.2)

    async def _answers(self) -> bool:
        """The node answers a metadata request naming itself (so it is registered and unfenced)."""
        assert self.process is not None
        if self.process.poll() is not None:
            tail = (self.home / "kafka.log").read_text(errors="replace")[-3000:]
            raise RuntimeError(f"Apache Kafka exited with code {self.process.returncode}:\n{tail}")
        client = AIOKafkaClient(bootstrap_servers=self.bootstrap, request_timeout_ms=3000)
        try:
            await client.bootstrap()
            return bool(client.cluster.brokers())
        except KafkaError:
            return False
        finally:
            await client.close()

    async def stop(self) -> None:
        if self.process is not None:
            await asyncio.to_thread(stop_process, self.process, signal.SIGTERM, 30)
            self.process = None

    async def lose_everything(self) -> None:
        await self.stop()
        shutil.rmtree(self.data)
        await self.start()


class Tansu:
    """The embedded broker the other tests use; its storage is memory, so a restart loses all."""

    name = "tansu"

    def __init__(self, home: Path) -> None:
        self.embedded = EmbeddedBroker(free_port(), home / "broker.log")

    @property
    def bootstrap(self) -> str:
        return self.embedded.bootstrap

    async def start(self) -> None:
        self.embedded.start()  # in this thread, for die_with_parent; it opens its port at once

    async def stop(self) -> None:
        self.embedded.stop()

    async def lose_everything(self) -> None:
        await self.stop()
        await self.start()
