"""`leadflow import FILE`: upload a CSV to ingest and follow its report with progress bars."""

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
from rich.console import Console
from rich.progress import (
    BarColumn,
    DownloadColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeRemainingColumn,
)

from services.ingest.import_files import counted

CHUNK = 256 * 1024
FINISHED = ("done", "failed", "interrupted")
# How long the report may be out of reach while it is followed: `leadflow dev` restarts a killed
# ingest within 1-30 s, and the import that ingest left is then reported interrupted.
UNREACHABLE_SECONDS = 90.0


def upload_and_follow(
    path: Path,
    url: str,
    key: str,
    console: Console | None = None,
    encoding: str | None = None,
    tz: str | None = None,
) -> dict[str, Any]:
    """Upload `path` (read in `encoding`, when one is named; its enquiry dates in `tz`), show
    progress until the import finishes, and return its report."""
    console = console or Console(stderr=True)
    headers = {"X-Source-Key": key, "content-type": "text/csv"}
    with (
        httpx.Client(base_url=url, timeout=httpx.Timeout(30, read=300)) as client,
        Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            DownloadColumn(),
            TimeRemainingColumn(),
            console=console,
            transient=True,
        ) as progress,
    ):
        sending = progress.add_task(f"Uploading {path.name}", total=path.stat().st_size)

        def chunks() -> Iterator[bytes]:
            with path.open("rb") as file:
                while chunk := file.read(CHUNK):
                    progress.advance(sending, len(chunk))
                    yield chunk

        named = {"encoding": encoding, "tz": tz}
        params = {"filename": path.name} | {name: value for name, value in named.items() if value}
        response = client.post("/v1/imports", params=params, content=chunks(), headers=headers)
        if response.status_code != 202:
            raise ImportRefused(response)
        status_url = response.json()["status_url"]
    return follow(url, status_url, key, console)


def follow(url: str, status_url: str, key: str, console: Console) -> dict[str, Any]:
    with (
        httpx.Client(base_url=url, timeout=30) as client,
        Progress(
            TextColumn("Importing"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(), console=console
        ) as progress,
    ):
        task = progress.add_task("rows", total=None)
        unreachable_since: float | None = None
        while True:
            try:
                report: dict[str, Any] = (
                    client.get(status_url, headers={"X-Source-Key": key}).raise_for_status().json()
                )
                unreachable_since = None
            except httpx.HTTPError as error:
                if not _passing(error):
                    raise
                unreachable_since = unreachable_since or time.monotonic()
                if time.monotonic() - unreachable_since > UNREACHABLE_SECONDS:
                    raise ImportUnfollowed(status_url, error) from error
                time.sleep(1)  # waiting for ingest to come back, a user-facing progress display
                continue
            progress.update(task, total=report["rows_total"], completed=report["rows_done"])
            if report["status"] in FINISHED:
                return report
            time.sleep(0.5)  # polling the report, a user-facing progress display


def _passing(error: httpx.HTTPError) -> bool:
    """A fault that passes: ingest restarting (no connection, one dropped, no answer in time) or
    its database (503), or a proxy in front of it (502, 504)."""
    if isinstance(error, httpx.HTTPStatusError):
        return error.response.status_code in (502, 503, 504)
    return isinstance(error, httpx.TransportError)


class ImportUnfollowed(Exception):
    """Ingest stayed unreachable while the import was followed: the import may still run."""

    def __init__(self, status_url: str, error: httpx.HTTPError) -> None:
        super().__init__(
            f"lost ingest for {UNREACHABLE_SECONDS:.0f}s while following the import ({error!r}); it may "
            f"still be running or be reported interrupted: GET {status_url} with the same key tells"
        )


class ImportRefused(Exception):
    def __init__(self, response: httpx.Response) -> None:
        super().__init__(f"{response.status_code}: {response.text}")
        self.response = response


def summary(report: dict[str, Any]) -> str:
    rows = counted(report["rows_done"], "row")
    lines = [f"{report['status']}: {rows} — {_taken(report)}, {report['rejected']} rejected"]
    if report.get("error"):  # why a file failed or an import was interrupted, and what to do
        lines.append(f"  {report['error']}")
    lines += [_unknown(header) for header in report.get("unknown_headers", [])]
    for rejection in report["rejections"][:20]:
        reasons = "; ".join(f"{e['field']}: {e['reason']}" for e in rejection["errors"])
        lines.append(f"  {_place(rejection)}: {reasons}")
    if report["rejected"] > 20:
        lines.append(f"  … and {report['rejected'] - 20} more (GET {report['id']} for the first 1,000)")
    return "\n".join(lines)


def _taken(report: dict[str, Any]) -> str:
    """New and known people apart only when the key is told who was known (`merged_told`): a
    `capture` key's report counts both as accepted."""
    if report.get("merged_told"):
        return f"{counted(report['accepted'], 'new lead')}, {report['merged']} merged into known people"
    return f"{report['accepted']} accepted (new or already known: a capture key is not told which)"


def _place(rejection: dict[str, Any]) -> str:
    """Where a rejected row is: the line a person finds it on in the file, and its number."""
    if rejection.get("line") is None:
        return f"row {rejection['row']}"
    return f"line {rejection['line']} (row {rejection['row']})"


def _unknown(header: dict[str, Any]) -> str:
    """A header no lead field takes: where its values went, and what it probably meant."""
    went = f"kept as {header['kept_as']}" if header["kept_as"] else "not imported"
    meant = f"; did you mean {header['did_you_mean']}?" if header["did_you_mean"] else ""
    return f'  column "{header["header"]}" is no lead field: {went}{meant}'
