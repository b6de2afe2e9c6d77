"""`leadflow dev` refuses a setting it cannot take in one line, before it starts anything, and a
service that exits before the stack is ready is named with its reason, not only its log's path."""

import asyncio
import os
import socket
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

import shared
from shared.dev_settings import PARTS, DevSettings
from shared.embedded import PortTaken, free_port
from shared.embedded_postgres import EmbeddedPostgres
from tests.conftest import PostgresServer

LEADFLOW = str(Path(sys.executable).parent / "leadflow")


def leadflow_dev(home: Path, **settings: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("LEADFLOW_")}
    env |= {"LEADFLOW_HOME": str(home), "LEADFLOW_PG_PORT": str(free_port())}
    env["LEADFLOW_KAFKA_PORT"] = str(free_port())
    env |= {f"LEADFLOW_{p.upper().replace('-', '_')}_PORT": str(free_port()) for p in PARTS}
    env |= settings
    return subprocess.run([LEADFLOW, "dev"], env=env, capture_output=True, text=True, timeout=120)


REFUSED = {
    "an unknown service": (
        {"LEADFLOW_ONLY": "ingest,scorin"},
        "LEADFLOW_ONLY: names unknown services: scorin (known: ingest, scoring, nurture, metrics)",
    ),
    "a service port that is not a number": (
        {"LEADFLOW_INGEST_PORT": "80o1"},
        "LEADFLOW_INGEST_PORT must be a TCP port, 1 to 65535",
    ),
    "the published admin token where other machines reach the services": (
        {"LEADFLOW_HOST": "0.0.0.0"},
        "LEADFLOW_ADMIN_TOKEN must be set, not to the development token, on 0.0.0.0:"
        " other machines reach the services there",
    ),
    "the published viewer token where other machines reach the services": (
        {
            "LEADFLOW_HOST": "192.0.2.7",
            "LEADFLOW_ADMIN_TOKEN": "an-admin-token-of-its-own",
            "LEADFLOW_VIEWER_TOKEN": "dev-viewer-token",
        },
        "LEADFLOW_VIEWER_TOKEN must not be the development token on 192.0.2.7",
    ),
    "the published admin token behind a proxy on this machine": (
        {"LEADFLOW_NURTURE_PUBLIC_URL": "https://leads.example.kz"},
        "LEADFLOW_ADMIN_TOKEN must be set, not to the development token, behind a proxy"
        " (LEADFLOW_NURTURE_PUBLIC_URL is set): other machines reach the services through it",
    ),
    "the published admin token behind a named proxy": (
        {"LEADFLOW_TRUSTED_PROXIES": "127.0.0.1"},
        "LEADFLOW_ADMIN_TOKEN must be set, not to the development token, behind a proxy"
        " (LEADFLOW_TRUSTED_PROXIES is set): other machines reach the services through it",
    ),
    "an admin token too short": (
        {"LEADFLOW_ADMIN_TOKEN": "x"},
        "LEADFLOW_ADMIN_TOKEN must be at least 12 characters",
    ),
    "a database name PostgreSQL would read as SQL": (
        {"LEADFLOW_DATABASE": 'bad"name'},
        "LEADFLOW_DATABASE must be a database name: letters, digits and _, not first a digit,"
        " up to 63 characters",
    ),
    "a negative PostgreSQL port": (
        {"LEADFLOW_PG_PORT": "-1"},
        "LEADFLOW_PG_PORT: Input should be greater than or equal to 1",
    ),
}


@pytest.mark.parametrize("case", REFUSED, ids=str)
def test_a_wrong_setting_is_one_line_and_nothing_is_started(tmp_path: Path, case: str) -> None:
    """An unknown LEADFLOW_ONLY was said after PostgreSQL, the broker and the migrations (seconds);
    a service port that was not a number, as "invalid literal for int() with base 10", no name."""
    settings, said = REFUSED[case]
    refused = leadflow_dev(tmp_path, **settings)
    assert refused.returncode == 2
    assert refused.stdout == ""
    assert refused.stderr.splitlines() == [f"leadflow: configuration refused: {said}"]
    assert not (tmp_path / "postgres").exists(), "PostgreSQL was not started"


@pytest.mark.e2e
@pytest.mark.timeout(300)
def test_a_service_that_exits_before_the_stack_is_ready_is_named_with_its_reason(tmp_path: Path) -> None:
    refused = leadflow_dev(tmp_path, LEADFLOW_ONLY="scoring", LEADFLOW_ENV="prod")
    assert refused.returncode == 1
    log = tmp_path.resolve() / "logs" / "scoring.log"
    assert (
        "leadflow: error: scoring exited (exit code 2): scoring: configuration refused: LEADFLOW_ENV: Input"
        f" should be 'dev', 'test' or 'production'; see {log}"
    ) in refused.stdout


def test_a_configured_server_that_cannot_be_reached_is_named(
    tmp_path: Path, postgres: PostgresServer
) -> None:
    """With LEADFLOW_DATABASE_URL or LEADFLOW_KAFKA_BOOTSTRAP set, `leadflow dev` starts neither
    server; one it cannot reach was "error: [Errno 111] Connect call failed ('127.0.0.1', 5432)",
    which named neither PostgreSQL nor the broker."""
    port = free_port()
    down = f"postgresql+asyncpg://leadflow:s3cret-pw@127.0.0.1:{port}/leadflow"
    refused = leadflow_dev(
        tmp_path, LEADFLOW_DATABASE_URL=down, LEADFLOW_KAFKA_BOOTSTRAP=f"127.0.0.1:{free_port()}"
    )
    assert refused.returncode == 1
    assert (
        f"leadflow: error: cannot reach PostgreSQL at 127.0.0.1:{port}/leadflow (ConnectionRefusedError:"
    ) in refused.stdout
    assert "s3cret-pw" not in refused.stdout + refused.stderr
    name = f"leadflow_dev_{uuid.uuid4().hex[:8]}"  # a copy: nobody may be connected to the template
    asyncio.run(postgres.execute(f'CREATE DATABASE "{name}" TEMPLATE "{postgres.template}"'))
    nowhere = f"127.0.0.1:{free_port()}"
    try:
        refused = leadflow_dev(
            tmp_path, LEADFLOW_DATABASE_URL=postgres.database_url(name), LEADFLOW_KAFKA_BOOTSTRAP=nowhere
        )
    finally:
        asyncio.run(postgres.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    assert refused.returncode == 1
    assert (
        f"leadflow: error: cannot reach the Kafka broker at {nowhere} (KafkaConnectionError)"
        in refused.stdout
    )


def test_a_home_that_cannot_hold_the_stack_is_one_line(tmp_path: Path) -> None:
    home = tmp_path / "a-file"
    home.write_text("not a folder")
    refused = leadflow_dev(home)
    assert refused.returncode == 1
    assert refused.stdout.splitlines() == [
        f"leadflow: error: cannot keep the stack's data in LEADFLOW_HOME={home} (File exists)"
    ]
    assert refused.stderr == ""
    env = {k: v for k, v in os.environ.items() if not k.startswith("LEADFLOW_")} | {
        "LEADFLOW_HOME": str(home)
    }
    shown = subprocess.run([LEADFLOW, "status"], env=env, capture_output=True, text=True, timeout=60)
    assert (shown.returncode, shown.stderr) == (1, "")
    assert "leadflow dev is not running" in shown.stdout


def test_a_port_another_program_holds_is_said_before_anything_starts(tmp_path: Path) -> None:
    """It was said once PostgreSQL had started (a new home's initdb first, seconds) and every
    schema was migrated, leaving a data directory made for nothing."""
    with socket.create_server(("127.0.0.1", 0)) as other_program:
        port = other_program.getsockname()[1]
        refused = leadflow_dev(tmp_path, LEADFLOW_ONLY="ingest", LEADFLOW_INGEST_PORT=str(port))
    assert refused.returncode == 1
    assert refused.stdout.splitlines() == [
        f"leadflow: error: ingest cannot listen on 127.0.0.1:{port}: another program does;"
        " stop it, or choose another port with LEADFLOW_INGEST_PORT",
        "leadflow: stopping",
        "leadflow: stopped",
    ]
    assert not (tmp_path / "postgres").exists(), "PostgreSQL was not started"


def test_postgresql_checks_its_port_before_it_makes_a_new_data_directory(tmp_path: Path) -> None:
    """initdb ran first: a taken port was said only after it (seconds), and left its data."""
    data = tmp_path / "postgres"
    with socket.create_server(("127.0.0.1", 0)) as other_program:
        port = other_program.getsockname()[1]
        postgres = EmbeddedPostgres(data, port, durable=False)
        with pytest.raises(PortTaken, match=f"PostgreSQL cannot listen on 127.0.0.1:{port}"):
            postgres.start()
    assert postgres.process is None
    assert not (data / "PG_VERSION").exists(), "no data directory was made"


def test_the_stacks_home_is_the_clones_wherever_it_is_started_from(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`.leadflow` was taken relative to the folder `leadflow dev` was started in: a start from
    anywhere else (a service unit with no working directory) brought up a new, empty stack, and
    the website's source keys were refused. LEADFLOW_HOME still chooses another."""
    monkeypatch.delenv("LEADFLOW_HOME", raising=False)
    monkeypatch.chdir(tmp_path)
    clone = Path(shared.__file__).resolve().parent.parent
    assert DevSettings().home == clone / ".leadflow"
    monkeypatch.setenv("LEADFLOW_HOME", str(tmp_path / "elsewhere"))
    assert DevSettings().home == tmp_path / "elsewhere"
