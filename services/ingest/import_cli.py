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


def upload_and_follow(path: Path, url: str, key: str, console: Console | None = None) -> dict[str, Any]:
    """Upload `path`, show progress until the import finishes, and return its report."""
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

        response = client.post(
            "/v1/imports", params={"filename": path.name}, content=chunks(), headers=headers
        )
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
        while True:
            report: dict[str, Any] = (
                client.get(status_url, headers={"X-Source-Key": key}).raise_for_status().json()
            )
            progress.update(task, total=report["rows_total"], completed=report["rows_done"])
            if report["status"] in FINISHED:
                return report
            time.sleep(0.5)  # polling the report, a user-facing progress display


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
