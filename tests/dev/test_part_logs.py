"""Each part's log under LEADFLOW_LOG_MAX_MB: `leadflow dev` writes what a part says to its log
itself, and past the limit renames the log `<name>.1` and starts a new one, between two lines.
The writers here are real processes with a pipe of the log as their output, as the parts have."""

import asyncio
import os
import re
import stat
import subprocess
import sys
import time
from pathlib import Path

import asyncpg
import pytest

from shared.part_logs import PartLog
from tests.stack import DevProcess

NUMBERED = "import sys\nfor i in range({lines}):\n    print(f'line {{i:06d}} ' + 'x' * {width}, flush=True)"


def line(i: int, width: int) -> str:
    return f"line {i:06d} " + "x" * width


def run_writer(log: PartLog, lines: int, width: int) -> None:
    """A process that prints `lines` numbered lines without pause, its output the log's pipe;
    returns once every line it printed is in the files."""
    output = log.pipe()
    try:
        writer = subprocess.Popen(
            [sys.executable, "-c", NUMBERED.format(lines=lines, width=width)], stdout=output
        )
    finally:
        os.close(output)
    assert writer.wait(60) == 0
    assert log.drain(30), "the log's writer read all the part wrote"


def test_a_log_started_again_while_its_part_writes_without_pause_loses_no_line(tmp_path: Path) -> None:
    """The supervisor copied a log past its limit to `.1` and emptied it in place while the part
    kept writing to it: each line written between the copy and the truncation was lost (about a
    hundred of these 20,000 lines, each time)."""
    path = tmp_path / "logs" / "scoring.log"
    run_writer(PartLog(path, max_bytes=600_000), lines=20_000, width=40)  # 1,060,000 bytes: one start again
    kept, current = path.with_name("scoring.log.1").read_text(), path.read_text()
    assert 0 < len(current) < len(kept) <= 600_000
    assert (kept + current).splitlines() == [line(i, 40) for i in range(20_000)], "every line, once, whole"


def test_a_log_past_its_limit_starts_again_and_the_one_before_is_kept(tmp_path: Path) -> None:
    """The logs grew for as long as the stack ran (a hot lead with no rep is a warning in two of
    them: about 70 MB an hour at 100 leads/s). Each file holds the whole lines that fit."""
    logs = tmp_path / "logs"
    run_writer(PartLog(logs / "nurture.log", max_bytes=10_000), lines=350, width=88)  # 101 bytes each
    kept, current = logs / "nurture.log.1", logs / "nurture.log"
    assert kept.read_text().splitlines() == [line(i, 88) for i in range(198, 297)], (
        "99 lines fit in 10,000 bytes"
    )
    assert current.read_text().splitlines() == [line(i, 88) for i in range(297, 350)]
    assert {stat.S_IMODE(p.stat().st_mode) for p in (kept, current)} == {0o600}
    assert stat.S_IMODE(logs.stat().st_mode) == 0o700


def test_a_log_that_cannot_start_again_is_said_once_and_goes_on_growing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Its `.1` cannot be written (here a folder in its place; a full disk alike): the rotation
    says so and the part goes on, every line kept (the error once ended `leadflow dev`)."""
    logs = tmp_path / "logs"
    (logs / "nurture.log.1").mkdir(parents=True)
    run_writer(PartLog(logs / "nurture.log", max_bytes=10_000), lines=300, width=88)
    assert (logs / "nurture.log").read_text().splitlines() == [line(i, 88) for i in range(300)]
    said = capsys.readouterr().out.splitlines()
    assert said == ["leadflow: could not start nurture.log again (Is a directory); it goes on growing"]


async def warn(database_url: str, times: int) -> None:
    """PostgreSQL logs each warning (log_min_messages), numbered, with a line of context."""
    connection = await asyncpg.connect(database_url)
    try:
        await connection.execute(
            f"DO $$ BEGIN FOR i IN 1..{times} LOOP RAISE WARNING 'warning % of the test', i; END LOOP; END $$"
        )
    finally:
        await connection.close()


def server_log(home: Path) -> Path:
    """server.log beside PostgreSQL's data (as root, beside the data directory home/postgres links to)."""
    data = home / "postgres"
    return data.resolve().parent / "server.log" if data.is_symlink() else data / "server.log"


@pytest.mark.e2e
@pytest.mark.timeout(300)
def test_postgresqls_log_is_kept_under_the_limit_too(tmp_path: Path) -> None:
    """server.log, beside PostgreSQL's data, was never started again: it grew for as long as the
    stack ran, whatever LEADFLOW_LOG_MAX_MB said (2.7 MB for 15,000 warnings under a 1 MB limit)."""
    dev = DevProcess(tmp_path / "home", only=("ingest",), env={"LEADFLOW_LOG_MAX_MB": "1"})
    dev.start()
    try:
        asyncio.run(warn(dev.database_url, 8_000))  # about 1.4 MB of log: started again once
        log = server_log(dev.home)
        kept = log.with_name("server.log.1")
        deadline = time.monotonic() + 30
        while not (kept.exists() and "warning 8000 of the test" in log.read_text(errors="replace")):
            assert time.monotonic() < deadline, f"{log} was not started again: {log.stat().st_size} bytes"
            time.sleep(0.05)  # polling the supervisor's writer, with a deadline
    finally:
        assert dev.stop() == []
    assert kept.stat().st_size <= 1024 * 1024 and log.stat().st_size <= 1024 * 1024
    said = re.findall(r"WARNING:  warning (\d+) of the test", kept.read_text() + log.read_text())
    assert [int(n) for n in said] == list(range(1, 8_001)), "each warning, once, in order"
