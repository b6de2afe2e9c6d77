"""`leadflow --help` and each command's read as written: a docstring's lines are one paragraph,
wrapped to the terminal, not broken where the source broke them ("print each one (a hot lead
with the command that / acknowledges it)", found by an outside review)."""

import subprocess
import sys

import pytest
from typer.testing import CliRunner

from shared.cli import main

WIDE = {"COLUMNS": "400", "TERMINAL_WIDTH": "400"}
LISTEN = (
    "Receive webhooks while trying Leadflow: print each one (a hot lead with the command that"
    " acknowledges it), check its signature with --secret, and answer 204."
)


@pytest.mark.parametrize("command", [["--help"], ["listen", "--help"]], ids=["leadflow", "listen"])
def test_a_commands_help_is_one_paragraph_as_written(command: list[str]) -> None:
    shown = CliRunner().invoke(main, command, env=WIDE)
    assert shown.exit_code == 0, shown.output
    lines = [line.strip(" │") for line in shown.output.splitlines()]
    assert any(LISTEN in line for line in lines), shown.output


def test_leadflow_dev_help_names_its_settings() -> None:
    """`leadflow dev --help` listed nothing but --help: not where the data goes, nor the ports."""
    shown = CliRunner().invoke(main, ["dev", "--help"], env=WIDE)
    assert shown.exit_code == 0, shown.output
    for setting in ("LEADFLOW_HOME", "LEADFLOW_ONLY", "LEADFLOW_PG_PORT", "LEADFLOW_INGEST_PORT"):
        assert setting in shown.output, setting
    listed = CliRunner().invoke(main, ["--help"], env=WIDE).output
    assert "LEADFLOW_HOME" not in listed, "the command list keeps to the first paragraph"


def test_leadflow_starts_without_loading_the_services_libraries() -> None:
    """`leadflow listen` or `--help` loaded FastAPI, uvicorn, SQLAlchemy and Alembic first: 1.5 s
    before a word on a quiet machine, 15 s on a busy one (a rep's listener seemed dead)."""
    probe = "import sys, shared.cli; print(sorted(m for m in HEAVY if m in sys.modules))"
    heavy = "HEAVY = ('fastapi', 'uvicorn', 'sqlalchemy', 'alembic', 'asyncpg', 'aiokafka')"
    loaded = subprocess.run(
        [sys.executable, "-c", f"{heavy}; {probe}"], capture_output=True, text=True, timeout=60, check=True
    )
    assert loaded.stdout.strip() == "[]"
