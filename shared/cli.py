"""Command lines: `leadflow dev | status | migrate | backup | import`; a service's `serve | migrate`."""

import fcntl
import json
import os
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, TypeVar
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import typer

if TYPE_CHECKING:
    from fastapi import FastAPI

    from shared.settings import ServiceSettings

# `leadflow` imports what a command needs when it runs, so `leadflow listen` or `--help` start
# at once rather than after loading FastAPI, SQLAlchemy and Alembic (a second or more).

SERVICES = ("ingest", "scoring", "nurture", "metrics")
LOCK_FILE = "dev.lock"  # held by the running `leadflow dev` of a home (shared.dev.hold_home)
PROJECT_DIR = Path(__file__).resolve().parent.parent  # the clone
SERVICES_DIR = PROJECT_DIR / "services"


def migrations_dir(service: str) -> Path:
    return SERVICES_DIR / service / "migrations"


S = TypeVar("S", bound="ServiceSettings")


def service_cli(
    name: str,
    settings_type: type[S],
    create_app: "Callable[[S], FastAPI]",
    parts: "Mapping[str, tuple[str, Callable[[S], FastAPI]]] | None" = None,
) -> typer.Typer:
    """`python -m services.<name> serve | migrate`, and a command per part of the service that
    can run in a process of its own (`parts`: command → its help and its app)."""
    cli = typer.Typer(add_completion=False, rich_markup_mode="markdown", help=f"Leadflow {name} service.")

    def serving(create: "Callable[[S], FastAPI]") -> Callable[..., None]:
        def serve(port: Annotated[int | None, typer.Option(help="HTTP port")] = None) -> None:
            import uvicorn

            from shared.observability import configure_logging
            from shared.refusals import load_settings
            from shared.request_head import bounded_head

            settings = load_settings(name, settings_type, **({} if port is None else {"port": port}))
            configure_logging(name, settings.log_level)
            uvicorn.run(
                create(settings),
                host=settings.host,
                port=settings.port,
                log_config=None,
                access_log=False,
                loop="uvloop",
                # httptools, the request's head and body bounded
                http=bounded_head(settings.head_timeout_seconds, settings.body_timeout_seconds),
                timeout_graceful_shutdown=10,
                proxy_headers=False,  # the app believes X-Forwarded-For only from LEADFLOW_TRUSTED_PROXIES
            )

        return serve

    cli.command("serve", help="Run the HTTP API and the background loops.")(serving(create_app))
    for command, (help_text, create) in (parts or {}).items():
        cli.command(command, help=help_text)(serving(create))

    @cli.command()
    def migrate() -> None:
        """Bring this service's schema to the latest revision."""
        from shared.migrations import upgrade
        from shared.refusals import load_settings, reaching_postgres

        settings = load_settings(name, settings_type)
        with reaching_postgres(name, settings.database_url):
            upgrade(settings.database_url, name, migrations_dir(name))

    return cli


main = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    rich_markup_mode="markdown",  # a docstring's lines are one paragraph, as written
    help="Leadflow: capture, classify, hand off and follow up leads.",
)


@main.command()
def dev() -> None:
    """Run the whole stack here (servers, migrations, topics, services); restart any part that dies.

    Settings, from the environment (README "Settings"): LEADFLOW_HOME (where its data and logs
    are kept; the clone's .leadflow by default), LEADFLOW_ONLY (some services), LEADFLOW_PG_PORT,
    LEADFLOW_KAFKA_PORT and LEADFLOW_<PART>_PORT (LEADFLOW_INGEST_PORT, …), LEADFLOW_HOST,
    LEADFLOW_ADMIN_TOKEN and LEADFLOW_VIEWER_TOKEN, LEADFLOW_DATABASE_URL and
    LEADFLOW_KAFKA_BOOTSTRAP (servers of your own instead of the embedded ones)."""
    from shared.dev import run_dev
    from shared.dev_settings import DevSettings
    from shared.refusals import load_settings

    raise typer.Exit(run_dev(load_settings("leadflow", DevSettings)))


@main.command()
def status(
    as_json: Annotated[bool, typer.Option("--json", help="Print the status as JSON")] = False,
) -> None:
    """Show each part of the running `leadflow dev`: state, pid, restarts, last exit, uptime."""
    from shared.dev import STATUS_FILE
    from shared.dev_settings import DevSettings
    from shared.refusals import load_settings

    path = load_settings("leadflow", DevSettings).home / STATUS_FILE
    report = read_status(path)
    if as_json:
        typer.echo(json.dumps(report, indent=2))
    elif not report["running"]:
        typer.echo(f"leadflow dev is not running (no live supervisor in {path})")
    else:
        typer.echo(status_table(report["parts"], time.time()))
    raise typer.Exit(0 if report["running"] else 1)


def read_status(path: Path) -> dict[str, Any]:
    """The status `leadflow dev` wrote last, with "running": whether that process is alive."""
    try:
        status: dict[str, Any] = json.loads(path.read_text())
    except (FileNotFoundError, NotADirectoryError):
        return {"running": False, "parts": {}}
    return status | {"running": supervisor_alive(path.parent, int(status["pid"]))}


def supervisor_alive(home: Path, pid: int) -> bool:
    """Whether a `leadflow dev` holds `home`'s lock. Its pid alone is not enough: after a kill -9
    or a reboot the pid may be another process's, and status showed a stack long gone as
    running. A home without the lock was written by a release before it: the pid is all there is."""
    try:
        lock = os.open(home / LOCK_FILE, os.O_RDONLY)
    except FileNotFoundError:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            pass  # alive, under another user
        return True
    try:
        fcntl.flock(lock, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        os.close(lock)
    return False


def status_table(parts: dict[str, dict[str, Any]], now: float) -> str:
    """One line per part, under a header."""
    rows = [("PART", "STATE", "PID", "RESTARTS", "UPTIME", "LAST EXIT")]
    for name, part in parts.items():
        since = part["started_at"]
        uptime = "-" if since is None else duration(now - since)
        pid = str(part["pid"] or "-")
        rows.append((name, part["state"], pid, str(part["restarts"]), uptime, part["last_exit"] or "-"))
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip() for row in rows)


def duration(seconds: float) -> str:
    """4s, 3m05s, 2h07m."""
    seconds = max(int(seconds), 0)
    if seconds < 60:
        return f"{seconds}s"
    if seconds < 3600:
        return f"{seconds // 60}m{seconds % 60:02d}s"
    return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"


@main.command()
def migrate() -> None:
    """Migrate every service schema on LEADFLOW_DATABASE_URL (unset: `leadflow dev`'s PostgreSQL)."""
    # As `seed`: the dev stack's own server with the password its LEADFLOW_HOME keeps (without
    # it, "password authentication failed" and no word of where the password is).
    from shared.dev_settings import DevSettings
    from shared.migrations import upgrade
    from shared.refusals import load_settings, reaching_postgres
    from shared.settings import ServiceSettings

    load_settings("leadflow", ServiceSettings)  # a refused setting is said in a line, as a service says it
    database_url = load_settings("leadflow", DevSettings).stack_database_url
    with reaching_postgres("leadflow", database_url):
        for service in SERVICES:
            upgrade(database_url, service, migrations_dir(service))
            typer.echo(f"{service}: migrated")


@main.command()
def backup(
    file: Annotated[Path, typer.Argument(dir_okay=False, help="The archive to write (never overwritten)")],
) -> None:
    """Write FILE (0600): a pg_dump of the stack's database and its secret.key, while it runs.

    The database is LEADFLOW_DATABASE_URL's, or else the one `leadflow dev` runs (LEADFLOW_HOME,
    LEADFLOW_PG_PORT, LEADFLOW_DATABASE); the key is LEADFLOW_HOME's secret.key. Restoring it:
    README "Backup and restore"."""
    from shared.backup import KEY, BackupRefused, write_backup
    from shared.dev_settings import DevSettings
    from shared.refusals import load_settings

    settings = load_settings("leadflow", DevSettings)
    try:
        write_backup(
            file,
            settings.stack_database_url,
            settings.home / KEY,
            typer.echo,
            key_set=bool(os.environ.get("LEADFLOW_SECRET_KEY")),  # what `leadflow dev` gives the services
        )
    except BackupRefused as error:
        typer.echo(f"leadflow backup: {error}", err=True)
        raise typer.Exit(1) from error


@main.command("import")
def import_csv(
    file: Annotated[Path, typer.Argument(exists=True, dir_okay=False, readable=True, help="The CSV file")],
    key: Annotated[
        str,
        typer.Option(
            envvar="LEADFLOW_SOURCE_KEY",
            help="The key of the source the rows come through (a source of any channel)",
        ),
    ],
    url: Annotated[
        str, typer.Option(envvar="LEADFLOW_INGEST_URL", help="Ingest's base URL")
    ] = "http://127.0.0.1:8001",
    encoding: Annotated[
        str | None,
        typer.Option(
            help="The file's encoding when it is not UTF-8: cp1251 (a Russian- or Kazakh-locale"
            " Excel's CSV), cp1254 (an Azerbaijani one), utf-16. A file with a byte order mark"
            " needs none."
        ),
    ] = None,
    tz: Annotated[
        str | None,
        typer.Option(
            help="The IANA time zone (Asia/Baku, Asia/Almaty) of the dates in the file's enquiry"
            " date column (Date, Дата обращения, Müraciət tarixi) written without an offset;"
            " default UTC."
        ),
    ] = None,
) -> None:
    """Import leads from a CSV file, with progress, and print the report."""
    import httpx
    from pydantic import TypeAdapter, ValidationError

    from services.ingest.import_cli import ImportRefused, ImportUnfollowed, summary, upload_and_follow
    from services.ingest.import_encodings import encoding_named
    from shared.times import ZoneName

    try:  # before the upload: a typo is told at once, not after the file went
        encoding = encoding_named(encoding) if encoding is not None else None
    except ValueError as error:
        raise typer.BadParameter(str(error), param_hint="--encoding") from error
    try:
        tz = TypeAdapter(ZoneName).validate_python(tz) if tz is not None else None
    except ValidationError as error:
        raise typer.BadParameter(error.errors()[0]["msg"], param_hint="--tz") from error
    try:
        report = upload_and_follow(file, url, key, encoding=encoding, tz=tz)
    except ImportRefused as error:
        typer.echo(f"ingest refused the file: {error}", err=True)
        raise typer.Exit(1) from error
    except ImportUnfollowed as error:
        typer.echo(str(error), err=True)
        raise typer.Exit(1) from error
    except httpx.HTTPError as error:  # ingest not running, or not at this URL: say so, no traceback
        typer.echo(f"cannot reach ingest at {url} ({error}); is it running? (--url names another)", err=True)
        raise typer.Exit(1) from error
    typer.echo(summary(report))
    raise typer.Exit(0 if report["status"] == "done" else 1)


@main.command()
def listen(
    port: Annotated[
        int, typer.Option(min=0, max=65535, help="The port to listen on (0: any free one)")
    ] = 9000,
    host: Annotated[str, typer.Option(help="The address to listen on")] = "127.0.0.1",
    secret: Annotated[
        str | None,
        typer.Option(envvar="LEADFLOW_WEBHOOK_SECRET", help="The rep's or subscription's whsec_ secret"),
    ] = None,
    tz: Annotated[
        str | None,
        typer.Option(help="The time zone to show times in, e.g. Asia/Almaty (default: this machine's)"),
    ] = None,
) -> None:
    """Receive webhooks while trying Leadflow: print each one (a hot lead with the command that
    acknowledges it), check its signature with --secret, and answer 204."""
    from services.nurture.listen_cli import listen as serve

    try:
        zone = ZoneInfo(tz) if tz else None
    except (ZoneInfoNotFoundError, ValueError) as error:
        raise typer.BadParameter(
            f"{tz!r} is no time zone: name one as Asia/Almaty or Asia/Baku", param_hint="--tz"
        ) from error
    try:
        serve(host, port, secret, typer.echo, zone)
    except OSError as error:  # the port taken, or an address not of this machine
        typer.echo(f"cannot listen on {host}:{port} ({error.strerror})", err=True)
        raise typer.Exit(1) from error


@main.command()
def seed(
    leads: Annotated[int, typer.Option(min=1, max=10_000_000, help="How many leads")] = 10_000,
    seed: Annotated[int, typer.Option(help="The same seed gives the same data set")] = 1,
    replace_everything: Annotated[
        bool,
        typer.Option("--replace-everything", help="Erase real leads and spend too, not only seeded ones"),
    ] = False,
) -> None:
    """Fill metrics' read model and scoring's standings with one
    realistic funnel, the same leads in both: replaces the leads and spend an earlier seed
    wrote, and refuses (changing nothing) when they hold any it did not, unless
    --replace-everything. Bulk-loaded, for trying the dashboard and measuring reads at scale.
    Into LEADFLOW_DATABASE_URL, or else the database `leadflow dev` runs (LEADFLOW_PG_PORT,
    LEADFLOW_DATABASE)."""
    from shared.dev_settings import DevSettings
    from shared.refusals import load_settings
    from shared.seed_cli import fill

    dsn = load_settings("leadflow", DevSettings).stack_database_url.replace("+asyncpg", "")
    fill(dsn, leads, seed, replace_everything)
