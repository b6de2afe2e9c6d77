"""`leadflow seed`'s work: metrics' read model and scoring's standings filled with one data set,
once it is sure that what it empties holds nothing a seed did not write (shared.seeded)."""

import asyncio
import time
from collections.abc import Callable

import asyncpg
import typer

from services.metrics.seed import COLUMNS, UNTIL, lead_rows
from services.metrics.seed import EMPTIED as METRICS_TABLES
from services.metrics.seed import seed as fill_metrics
from services.scoring.seed import EMPTIED as SCORING_TABLES
from services.scoring.seed import SeedLead
from services.scoring.seed import seed as fill_scoring
from shared.refusals import UNREACHABLE
from shared.seeded import UnseededRows, unseeded_rows


async def unseeded(dsn: str) -> dict[str, list[str]]:
    """Per service, the rows no seed wrote in the tables seeding empties (none: {})."""
    connection = await asyncpg.connect(dsn)
    try:
        found = {
            service: await unseeded_rows(connection, service, tables)
            for service, tables in (("metrics", METRICS_TABLES), ("scoring", SCORING_TABLES))
        }
    finally:
        await connection.close()
    return {service: rows for service, rows in found.items() if rows}


def refuse(error: UnseededRows, changed: str) -> typer.Exit:
    typer.echo(f"seed refused, {changed}: {error}; `leadflow seed --replace-everything` erases it", err=True)
    return typer.Exit(1)


def look_first(dsn: str, replace_everything: bool) -> None:
    """Refuse before writing anything when either service holds real data (both looked at)."""
    try:
        found = asyncio.run(unseeded(dsn))
    except UNREACHABLE as error:  # nothing listening there, or the password refused: no traceback
        where = dsn.rpartition("@")[2]  # host, port and database; never a password
        hint = "is `make run` up, with this LEADFLOW_HOME (its password is kept there)?"
        typer.echo(f"cannot reach PostgreSQL at {where} ({error}); {hint}", err=True)
        raise typer.Exit(1) from error
    if found and not replace_everything:
        raise refuse(UnseededRows(found), "nothing changed")


def fill(dsn: str, leads: int, seed: int, replace_everything: bool) -> None:
    """Both services' tables, metrics' first; one clear line and exit 1 when they hold real data."""
    look_first(dsn, replace_everything)
    try:
        done = asyncio.run(
            fill_metrics(
                dsn, leads, seed, progress=progress("metrics", leads), replace_everything=replace_everything
            )
        )
    except UnseededRows as error:  # real data arrived since the look above
        raise refuse(error, "nothing changed") from error
    typer.echo(
        f"\n{done.leads:,} leads ({done.customers:,} customers) and {done.spend_rows} spend entries"
        f" bulk-loaded into metrics' read model in {done.seconds:.1f} s"
    )
    at = [COLUMNS.index(name) for name in SeedLead._fields]  # the same leads, seen by scoring
    same_leads = (SeedLead(*(row[i] for i in at)) for row in lead_rows(leads, seed, UNTIL))
    started = time.monotonic()
    try:
        history = asyncio.run(
            fill_scoring(
                dsn,
                same_leads,
                UNTIL,
                seed,
                progress=progress("scoring", leads),
                replace_everything=replace_everything,
            )
        )
    except UnseededRows as error:
        raise refuse(error, "metrics seeded, scoring left as it was") from error
    typer.echo(
        f"\n{leads:,} standings and {history:,} changes of history bulk-loaded into scoring in"
        f" {time.monotonic() - started:.1f} s (not through the services' write paths: for reads at"
        " scale; `make bench` measures the pipeline)"
    )


def progress(what: str, leads: int) -> Callable[[int], None]:
    return lambda done: typer.echo(f"\r{what}: {done:,} of {leads:,} leads written", nl=False)
