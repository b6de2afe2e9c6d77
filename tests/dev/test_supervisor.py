"""`leadflow dev` keeps the stack up: a part killed with SIGKILL comes back and the rest keep running."""

import asyncio
import json
import os
import signal
import socket
import stat
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import psutil
import pytest
from aiokafka.admin import AIOKafkaAdminClient

from shared import topics
from shared.cli import duration, status_table
from shared.dev import TOPICS, hold_home
from shared.dev_settings import PARTS
from shared.embedded import PortTaken, claim_port, free_port
from shared.stack_parts import Part
from shared.supervisor import Supervisor, exit_cause, restart_delay
from tests.stack import DevProcess

ADMIN = {"Authorization": "Bearer dev-admin-token"}
LEADFLOW = str(Path(sys.executable).parent / "leadflow")


def wait_until(check: Callable[[], Any], timeout: float = 60.0, interval: float = 0.05) -> Any:
    """Poll `check` until it returns something truthy; fail at the deadline."""
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout}s (last: {result!r})")
        time.sleep(interval)  # polling, with a deadline


class Stack:
    """A running `leadflow dev`, seen as a user sees it: its output, status file and HTTP APIs."""

    def __init__(self, home: Path, only: tuple[str, ...] = ()) -> None:
        self.dev = DevProcess(home, only=only)
        self.http = httpx.Client(timeout=5)
        self.processes: list[psutil.Process] = []  # every process seen, to check none is left
        self.reader: threading.Thread | None = None

    def start(self) -> None:
        self.dev.start()
        assert self.dev.process is not None and self.dev.process.stdout is not None
        stdout = self.dev.process.stdout
        self.reader = threading.Thread(target=lambda: self.dev.output.extend(stdout), daemon=True)
        self.reader.start()
        self.remember()

    def output(self) -> str:
        return "".join(self.dev.output)

    def status(self) -> dict[str, Any]:
        return dict(json.loads((self.dev.home / "status.json").read_text())["parts"])

    def pid(self, part: str) -> int:
        return int(self.status()[part]["pid"])

    def remember(self) -> None:
        assert self.dev.process is not None
        self.processes += psutil.Process(self.dev.process.pid).children(recursive=True)

    def kill(self, part: str) -> dict[str, Any]:
        """SIGKILL one part; returns its status from before."""
        self.remember()
        before = self.status()[part]
        os.kill(before["pid"], signal.SIGKILL)
        return dict(before)

    def restarted(self, part: str, before: dict[str, Any]) -> dict[str, Any]:
        def back() -> dict[str, Any] | None:
            now = self.status()[part]
            return now if now["state"] == "running" and now["pid"] != before["pid"] else None

        now: dict[str, Any] = wait_until(back)
        self.remember()
        return now

    def ready(self, service: str) -> bool:
        try:
            return self.http.get(self.dev.url(service, "/readyz")).status_code == 200
        except httpx.HTTPError:
            return False

    def post_lead(self) -> str | None:
        """A new hot lead through a new source; None while ingest cannot take it."""
        try:
            source = self.http.post(
                self.dev.url("ingest", "/v1/sources"),
                headers=ADMIN,
                json={"name": "Landing", "channel": "landing_page"},
            )
            lead = self.http.post(
                self.dev.url("ingest", "/v1/leads"),
                headers={"X-Source-Key": source.json()["key"]},
                json={"email": f"{uuid.uuid4().hex[:12]}@example.kz", "timeframe": "immediately"},
            )
        except (httpx.HTTPError, KeyError, ValueError):
            return None
        return str(lead.json()["lead_id"]) if lead.status_code == 202 else None

    def classified(self, lead_id: str) -> bool:
        try:
            answer = self.http.get(self.dev.url("scoring", f"/v1/leads/{lead_id}"), headers=ADMIN)
        except httpx.HTTPError:
            return False
        return answer.status_code == 200 and answer.json()["temperature"] == "hot"

    def stop(self, sig: signal.Signals = signal.SIGTERM) -> int:
        """SIGTERM, as a service manager would (or `sig`); returns the exit code."""
        assert self.dev.process is not None
        self.remember()
        self.dev.process.send_signal(sig)
        code = self.dev.process.wait(30)
        assert self.reader is not None
        self.reader.join(10)
        self.http.close()
        return code

    def left_behind(self) -> list[int]:
        _, alive = psutil.wait_procs(self.processes, timeout=10)
        return [p.pid for p in alive]


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """One stack for the module's kill scenarios; each leaves it healthy for the next."""
    running = Stack(tmp_path_factory.mktemp("dev"))
    running.start()
    try:
        yield running
    finally:
        assert running.stop() == 0, running.output()
        assert running.left_behind() == []


@pytest.fixture
def small_stack(tmp_path: Path) -> Iterator[Stack]:
    """A stack of its own (PostgreSQL, the broker and scoring), for a test that stops it."""
    running = Stack(tmp_path, only=("scoring",))
    running.start()
    try:
        yield running
    finally:
        if running.dev.process is not None and running.dev.process.poll() is None:
            running.stop()


def leadflow_status(stack: Stack | Path, *options: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("LEADFLOW_")}
    env["LEADFLOW_HOME"] = str(stack if isinstance(stack, Path) else stack.dev.home)
    return subprocess.run([LEADFLOW, "status", *options], env=env, capture_output=True, text=True)


def services_unchanged(stack: Stack, before: dict[str, Any], but: str = "") -> None:
    now = stack.status()
    for service in ("ingest", "scoring", "nurture", "metrics"):
        if service != but:
            assert now[service]["pid"] == before[service]["pid"], f"{service} was restarted"
            assert now[service]["restarts"] == before[service]["restarts"]


@pytest.mark.e2e
@pytest.mark.timeout(300)
def test_a_killed_service_comes_back_and_the_others_keep_running(stack: Stack) -> None:
    shown = leadflow_status(stack, "--json")
    assert shown.returncode == 0, shown.stdout
    assert json.loads(shown.stdout)["running"] is True
    before = json.loads(shown.stdout)["parts"]
    assert before["scoring"]["state"] == "running"
    stack.kill("scoring")
    scoring = stack.restarted("scoring", before["scoring"])
    assert scoring["restarts"] == before["scoring"]["restarts"] + 1
    assert scoring["last_exit"] == "killed by SIGKILL"
    wait_until(
        lambda: f"scoring exited (killed by SIGKILL); restart {scoring['restarts']} in" in stack.output()
    )
    wait_until(lambda: stack.ready("scoring"))
    services_unchanged(stack, before, but="scoring")
    lead_id = wait_until(stack.post_lead, timeout=10)
    wait_until(lambda: stack.classified(lead_id))


@pytest.mark.e2e
def test_the_logs_are_readable_by_their_owner_only(stack: Stack) -> None:
    """They may quote what people sent (an error's text, a name in a warning)."""
    logs = stack.dev.home / "logs"
    wait_until(lambda: {"broker.log", "ingest.log", "nurture.log"} <= {p.name for p in logs.iterdir()})
    assert stat.S_IMODE(logs.stat().st_mode) == 0o700
    modes = {path.name: stat.S_IMODE(path.stat().st_mode) for path in logs.iterdir()}
    assert set(modes.values()) == {0o600}, modes


@pytest.mark.e2e
def test_the_read_model_and_follow_up_yield_the_cpu_to_the_hand_off_path(stack: Stack) -> None:
    """Metrics and nurture's main process (off a hot lead's way to its rep) run at a lower CPU
    priority than ingest, scoring and nurture's hand-off process."""
    ours = psutil.Process().nice()
    parts = ("ingest", "scoring", "hand-off", "nurture", "metrics")
    niceness = {p: psutil.Process(stack.pid(p)).nice() for p in parts}
    background = min(ours + 10, 19)
    assert niceness == {
        "ingest": ours,
        "scoring": ours,
        "hand-off": ours,
        "nurture": background,
        "metrics": background,
    }


async def topic_partitions(bootstrap: str) -> dict[str, int]:
    """Partitions per existing topic (listing first: describing a missing topic would create it)."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        described = await admin.describe_topics(await admin.list_topics())
        return {t["topic"]: len(t["partitions"]) for t in described}
    finally:
        await admin.close()


@pytest.mark.e2e
@pytest.mark.timeout(300)
def test_a_killed_broker_comes_back_with_its_topics_and_leads_flow_again(stack: Stack) -> None:
    before = stack.status()
    stack.kill("broker")
    stack.restarted("broker", before["broker"])
    partitions = asyncio.run(topic_partitions(f"127.0.0.1:{stack.dev.ports['kafka']}"))
    assert set(TOPICS) <= set(partitions)
    # No client asks for a dead-letter topic unless it dead-letters, so these were created by
    # the supervisor. A domain topic may have been created first by a reconnecting client
    # (Tansu creates a topic a client asks for, with 4 partitions): the test does not pin those.
    dead_letter_topics = [t for t in TOPICS if t not in topics.DOMAIN_TOPICS]
    assert {partitions[t] for t in dead_letter_topics} == {topics.PARTITIONS}
    lead_id = wait_until(stack.post_lead, timeout=10)
    wait_until(lambda: stack.classified(lead_id), timeout=90)
    services_unchanged(stack, before)


@pytest.mark.e2e
@pytest.mark.timeout(300)
def test_a_killed_postgres_comes_back_with_its_data(stack: Stack) -> None:
    earlier = wait_until(stack.post_lead, timeout=10)
    before = stack.status()
    stack.kill("postgres")
    stack.restarted("postgres", before["postgres"])
    lead_id = wait_until(stack.post_lead, timeout=60, interval=0.2)
    wait_until(lambda: stack.classified(lead_id))
    kept = stack.http.get(stack.dev.url("ingest", f"/v1/leads/{earlier}"), headers=ADMIN)
    assert kept.status_code == 200, "the lead taken before the kill is still there"
    services_unchanged(stack, before)


@pytest.mark.e2e
@pytest.mark.timeout(300)
def test_sigterm_during_a_restart_backoff_stops_everything(small_stack: Stack) -> None:
    stack = small_stack
    killed = None
    for attempt, delay in ((1, 1), (2, 2), (3, 4)):  # quick deaths in a row: the waits double
        if killed is not None:
            stack.restarted("scoring", killed)
        killed = stack.kill("scoring")
        said = f"scoring exited (killed by SIGKILL); restart {attempt} in {delay}s"
        wait_until(lambda: said in stack.output())  # noqa: B023 - used within the iteration
    assert stack.status()["scoring"]["state"] == "restarting"
    assert stack.stop() == 0, stack.output()
    assert stack.left_behind() == []
    assert stack.output().count("scoring running again") == 2, "stopped within the 4 s wait"
    assert {p["state"] for p in stack.status().values()} == {"stopped"}
    shown = leadflow_status(stack)
    assert shown.returncode == 1
    assert "leadflow dev is not running" in shown.stdout


@pytest.mark.e2e
@pytest.mark.timeout(300)
def test_a_closed_terminal_stops_the_stack_as_ctrl_c_does(small_stack: Stack) -> None:
    """SIGHUP (the terminal closed, an SSH session dropped) ended the supervisor at once (exit
    129): no "stopping", and the parts' last lines never reached their logs."""
    stack = small_stack
    assert stack.stop(signal.SIGHUP) == 0, stack.output()
    assert stack.left_behind() == []
    assert stack.output().rstrip().endswith("leadflow: stopped"), stack.output()[-500:]
    assert {p["state"] for p in stack.status().values()} == {"stopped"}


def test_restart_waits_double_from_one_second_up_to_thirty() -> None:
    assert [restart_delay(n) for n in range(8)] == [1, 2, 4, 8, 16, 30, 30, 30]
    assert restart_delay(1000) == 30


def test_exit_cause_names_the_signal_or_the_code() -> None:
    assert exit_cause(-signal.SIGKILL) == "killed by SIGKILL"
    assert exit_cause(-signal.SIGTERM) == "killed by SIGTERM"
    assert exit_cause(1) == "exit code 1"
    assert exit_cause(0) == "exit code 0"
    assert exit_cause(-200) == "killed by signal 200"


class FakeProcess:
    def __init__(self, pid: int) -> None:
        self.pid, self.returncode = pid, None

    def poll(self) -> int | None:
        return self.returncode


class FakePart(Part):
    """A part whose process dies when told to; no real process."""

    name = "fake"

    def __init__(self) -> None:
        self.current: Any = None
        self.starts = 0

    @property
    def process(self) -> Any:
        return self.current

    def start(self) -> None:
        self.starts += 1
        self.current = FakeProcess(self.starts)

    def stop(self) -> None:
        self.current = None


def test_a_part_is_restarted_after_its_delay_and_a_long_run_resets_the_delay(tmp_path: Path) -> None:
    clock = [100.0]
    supervisor = Supervisor(tmp_path / "status.json", clock=lambda: clock[0])
    part = FakePart()
    supervisor.start(part)
    entry = supervisor.parts[0]

    def die_and_restart(after_up: float, expected_delay: float) -> None:
        clock[0] += after_up
        part.current.returncode = -9
        supervisor.check(entry)
        assert entry.state == "restarting" and entry.last_exit == "killed by SIGKILL"
        clock[0] += expected_delay - 0.01
        supervisor.check(entry)
        assert entry.state == "restarting", "not before its delay"
        clock[0] += 0.01
        supervisor.check(entry)
        assert entry.state == "running"

    die_and_restart(after_up=5, expected_delay=1)
    die_and_restart(after_up=5, expected_delay=2)
    die_and_restart(after_up=5, expected_delay=4)
    die_and_restart(after_up=60, expected_delay=1)
    assert (part.starts, entry.restarts) == (5, 4)
    status = json.loads((tmp_path / "status.json").read_text())
    assert status["pid"] == os.getpid()
    assert status["parts"]["fake"] | {"started_at": None} == {
        "state": "running",
        "pid": 5,
        "restarts": 4,
        "last_exit": "killed by SIGKILL",
        "started_at": None,
    }


def test_status_table_shows_each_part() -> None:
    parts = {
        "postgres": {"state": "running", "pid": 11, "restarts": 0, "last_exit": None, "started_at": 1000.0},
        "scoring": {
            "state": "restarting",
            "pid": None,
            "restarts": 2,
            "last_exit": "killed by SIGKILL",
            "started_at": None,
        },
    }
    assert status_table(parts, now=1185.0).splitlines() == [
        "PART      STATE       PID  RESTARTS  UPTIME  LAST EXIT",
        "postgres  running     11   0         3m05s   -",
        "scoring   restarting  -    2         -       killed by SIGKILL",
    ]
    assert [duration(s) for s in (4, 185, 7620)] == ["4s", "3m05s", "2h07m"]


def second_dev(stack: Stack, home: Path, **settings: str) -> subprocess.CompletedProcess[str]:
    """`leadflow dev` started again beside the running stack, on its ports unless told, in `home`."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("LEADFLOW_")}
    env |= {"LEADFLOW_HOME": str(home), "LEADFLOW_PG_PORT": str(stack.dev.ports["pg"])}
    env["LEADFLOW_KAFKA_PORT"] = str(stack.dev.ports["kafka"])
    env |= {f"LEADFLOW_{p.upper().replace('-', '_')}_PORT": str(stack.dev.ports[p]) for p in PARTS}
    env |= settings
    return subprocess.run([LEADFLOW, "dev"], env=env, capture_output=True, text=True, timeout=60)


@pytest.mark.e2e
@pytest.mark.timeout(300)
def test_a_second_leadflow_dev_in_the_same_home_says_so_and_leaves_the_first_alone(stack: Stack) -> None:
    """It took the first's PostgreSQL for one left by a killed run and stopped it, again and
    again, and wrote its own status over the first's."""
    before, said_before = stack.status(), stack.output()
    second = second_dev(stack, stack.dev.home)
    assert second.returncode == 1, second.stdout
    assert stack.dev.process is not None
    home = stack.dev.home.resolve()
    assert (
        f"leadflow: error: leadflow dev is already running in {home} (pid {stack.dev.process.pid})"
        in second.stdout
    )
    assert stack.status() == before, "the first stack's parts and status file are untouched"
    shown = leadflow_status(stack, "--json")
    assert shown.returncode == 0 and json.loads(shown.stdout)["pid"] == stack.dev.process.pid
    assert stack.output().count("postgres exited") == said_before.count("postgres exited")


@pytest.mark.e2e
@pytest.mark.timeout(300)
def test_a_stack_of_another_home_on_taken_ports_names_the_port_and_its_setting(
    stack: Stack, tmp_path: Path
) -> None:
    """It found the first stack's PostgreSQL, broker and services answering on its ports, took
    them for its own, said "ready" and then restarted its parts for ever (none could bind). The
    broker's and the services' ports are checked before anything starts, PostgreSQL's as it starts."""
    before = stack.status()
    own = {"LEADFLOW_ONLY": "ingest"}
    for setting, part, what in (
        ("LEADFLOW_KAFKA_PORT", "kafka", "the Kafka broker"),
        ("LEADFLOW_INGEST_PORT", "ingest", "ingest"),
        ("LEADFLOW_PG_PORT", "pg", "PostgreSQL"),
    ):
        second = second_dev(stack, tmp_path / "other", **own)
        assert second.returncode == 1, second.stdout
        said = f"{what} cannot listen on 127.0.0.1:{stack.dev.ports[part]}: another program does;"
        assert f"leadflow: error: {said} stop it, or choose another port with {setting}" in second.stdout
        assert "ready" not in second.stdout
        own[setting] = str(free_port())  # the next start has this port of its own
    assert stack.status() == before, "the first stack's parts are untouched"


def test_status_is_not_fooled_by_a_pid_another_process_took_since(tmp_path: Path) -> None:
    """After a kill -9 of `leadflow dev` (or a reboot) its pid may be another process's: status
    said "running" and showed the parts of a stack long gone. The home's lock tells."""
    home = tmp_path / "home"
    lock = hold_home(home)
    assert lock is not None
    parts = {"scoring": {"state": "running", "pid": 1, "restarts": 0, "last_exit": None, "started_at": 0.0}}
    (home / "status.json").write_text(json.dumps({"pid": os.getpid(), "updated_at": 0.0, "parts": parts}))
    held = leadflow_status(home)
    assert held.returncode == 0, held.stdout
    os.close(lock)  # as the kernel does when the holder ends, by kill -9 too
    shown = leadflow_status(home)
    assert shown.returncode == 1, "this pid is alive, but it is no leadflow dev"
    assert "leadflow dev is not running" in shown.stdout


ENDING_SLOWLY = """
import signal, socket, sys, time
listener = socket.create_server(("127.0.0.1", 0))
signal.signal(signal.SIGTERM, lambda *_: (time.sleep(0.5), sys.exit(0)))  # a graceful end takes a moment
print(listener.getsockname()[1], flush=True)
signal.pause()
"""


def test_a_port_a_part_of_a_killed_stack_still_holds_while_it_ends_is_waited_for() -> None:
    """`leadflow dev` killed with -9: its parts are told to stop (PR_SET_PDEATHSIG) and a new one,
    started at once, found their ports still held for the moment they took to end."""
    ending = subprocess.Popen([sys.executable, "-c", ENDING_SLOWLY], stdout=subprocess.PIPE, text=True)
    assert ending.stdout is not None
    port = int(ending.stdout.readline())
    try:
        ending.send_signal(signal.SIGTERM)
        claim_port(port, "scoring")  # it raised PortTaken: the port was still held
    finally:
        ending.kill()
        ending.wait(10)
    taken = f"scoring cannot listen on 127.0.0.1:{port}: another program does"
    with socket.create_server(("127.0.0.1", port)), pytest.raises(PortTaken, match=taken):
        claim_port(port, "scoring")  # taken for good: refused once the wait is over


def test_a_status_file_that_cannot_be_written_stops_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """On a full disk the status file's write failed, the error left the supervisor, and the
    whole stack stopped, to stay down once space was freed (found by a review)."""
    blocked = tmp_path / "not-a-folder"
    blocked.write_text("")  # the status goes in a "folder" that is a file: every write fails
    clock = [100.0]
    supervisor = Supervisor(blocked / "status.json", clock=lambda: clock[0])
    part = FakePart()
    supervisor.start(part)
    entry = supervisor.parts[0]
    part.current.returncode = 1
    supervisor.check(entry)
    clock[0] += 1
    supervisor.check(entry)
    assert (entry.state, part.starts) == ("running", 2)
    said = capsys.readouterr().out
    assert said.count("cannot write") == 1 and "supervising on" in said
    assert "fake exited (exit code 1)" in said
    blocked.unlink()
    supervisor.write_status()
    assert json.loads((blocked / "status.json").read_text())["parts"]["fake"]["state"] == "running"
    assert "written again" in capsys.readouterr().out
