"""No input makes any service answer 5xx: schemathesis over the OpenAPI of all four services,
each a real process on its own port, with the admin token (and a source key for ingest) so
the admin routes and the handlers behind them are reached. The four runs go at once; a
failure shows schemathesis's reproduction (a curl line) and the service's own error log."""

import json
import os
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from shared.cli import SERVICES
from shared.embedded import free_port
from tests.conftest import ADMIN, ARTIFACTS, Servers

SEED = "20261202"
EXAMPLES = {"ingest": 15, "scoring": 25, "nurture": 20, "metrics": 25}  # per operation
MINIMUM_CASES = {"ingest": 1000, "scoring": 300, "nurture": 700, "metrics": 600}
RUN_SECONDS = 600


@dataclass
class Run:
    service: str
    log: Path
    returncode: int
    output: str

    @property
    def generated(self) -> int:
        found = re.search(r"(\d+) generated", self.output)
        assert found, self.output[-3000:]
        return int(found.group(1))

    def report(self) -> str:
        errors = [line for line in self.log.read_text(errors="replace").splitlines() if '"ERROR"' in line]
        return self.output[-6000:] + "\n--- service errors ---\n" + "\n".join(errors)[-4000:]


def start_service(
    service: str, servers: Servers, log: Path, settings: dict[str, str] | None = None, port: int | None = None
) -> tuple[str, subprocess.Popen[bytes]]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("LEADFLOW_")} | (settings or {})
    env |= {
        "LEADFLOW_DATABASE_URL": servers.database_url,
        "LEADFLOW_KAFKA_BOOTSTRAP": servers.bootstrap,
        "LEADFLOW_ADMIN_TOKEN": ADMIN["Authorization"].removeprefix("Bearer "),
        "LEADFLOW_ENV": "test",
        "PYTHONUNBUFFERED": "1",
        "LEADFLOW_RATE_LIMIT_PER_KEY": "",  # the fuzzer is one client, sending as fast as it can
        "LEADFLOW_RATE_LIMIT_PER_IP": "",
        "LEADFLOW_RATE_LIMIT_PER_IP_OTHER": "",
    }
    port = port or free_port()
    command = [sys.executable, "-m", f"services.{service}", "serve", "--port", str(port)]
    with log.open("wb") as out:
        process = subprocess.Popen(command, env=env, stdout=out, stderr=subprocess.STDOUT)
    return f"http://127.0.0.1:{port}", process


def wait_ready(url: str, process: subprocess.Popen[bytes], timeout: float = 120) -> None:
    deadline, last = time.monotonic() + timeout, "no answer"
    with httpx.Client(timeout=2) as client:
        while time.monotonic() < deadline:
            assert process.poll() is None, f"{url} exited with code {process.returncode}"
            try:
                answer = client.get(f"{url}/readyz")
                if answer.status_code == 200:
                    return
                last = answer.text
            except httpx.TransportError as error:
                last = repr(error)
            time.sleep(0.1)  # polling a server that is starting
    raise AssertionError(f"{url} was not ready within {timeout:.0f}s: {last}")


def source_key(ingest_url: str) -> str:
    with httpx.Client(base_url=ingest_url) as client:
        created = client.post(
            "/v1/sources",
            headers=ADMIN,
            json={
                "name": "Fuzz",
                "channel": "api",
                "scope": "history",  # every route behind the key is reached
                "allowed_origins": ["https://fuzz.example"],
            },
        )
    assert created.status_code == 201, created.text
    return str(created.json()["key"])


def schemathesis(service: str, url: str, headers: dict[str, str], cwd: Path) -> subprocess.Popen[str]:
    command = [
        str(Path(sys.executable).parent / "schemathesis"),
        "run",
        f"{url}/openapi.json",
        "--checks=not_a_server_error",
        f"--max-examples={EXAMPLES[service]}",
        f"--seed={SEED}",
        "--generation-database=none",
        "--request-timeout=20",
        "--suppress-health-check=all",
        *(f"--header={name}: {value}" for name, value in headers.items()),
    ]
    return subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, cwd=cwd)


@pytest.fixture(scope="module")
def runs(servers: Servers, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Run]]:
    """The four services up, then schemathesis against each, all four at once."""
    home = tmp_path_factory.mktemp("fuzz")
    started = {s: start_service(s, servers, home / f"{s}.log") for s in SERVICES}
    try:
        for url, process in started.values():
            wait_ready(url, process)
        headers = {**ADMIN, "X-Source-Key": source_key(started["ingest"][0])}
        fuzzers = {s: schemathesis(s, url, headers, home) for s, (url, _) in started.items()}
        outputs = {s: fuzzer.communicate(timeout=RUN_SECONDS)[0] for s, fuzzer in fuzzers.items()}
        for s, output in outputs.items():
            (home / f"{s}.schemathesis.txt").write_text(output)
        yield {s: Run(s, home / f"{s}.log", fuzzers[s].returncode, outputs[s]) for s in SERVICES}
    finally:
        for _, process in started.values():
            process.terminate()
        for _, process in started.values():
            process.wait(30)


@pytest.mark.timeout(RUN_SECONDS + 120)
@pytest.mark.parametrize("service", SERVICES)
def test_no_generated_request_gets_a_server_error(runs: dict[str, Run], service: str) -> None:
    run = runs[service]
    assert run.returncode == 0, run.report()
    assert run.generated >= MINIMUM_CASES[service], run.report()
    ARTIFACTS.mkdir(exist_ok=True)
    summary = ARTIFACTS / "schemathesis.json"
    counts = json.loads(summary.read_text()) if summary.exists() else {}
    summary.write_text(json.dumps(counts | {service: run.generated}, indent=2))
