"""Command lines: `leadflow dev | migrate`, and each service's `serve | migrate`."""

from collections.abc import Callable
from pathlib import Path
from typing import Annotated, TypeVar

import typer
import uvicorn
from fastapi import FastAPI

from shared.migrations import upgrade
from shared.observability import configure_logging
from shared.settings import ServiceSettings

SERVICES = ("ingest", "scoring", "nurture", "metrics")
SERVICES_DIR = Path(__file__).resolve().parent.parent / "services"


def migrations_dir(service: str) -> Path:
    return SERVICES_DIR / service / "migrations"


S = TypeVar("S", bound=ServiceSettings)


def service_cli(name: str, settings_type: type[S], create_app: Callable[[S], FastAPI]) -> typer.Typer:
    """`python -m services.<name> serve | migrate`."""
    cli = typer.Typer(add_completion=False, help=f"Leadflow {name} service.")

    @cli.command()
    def serve(port: Annotated[int | None, typer.Option(help="HTTP port")] = None) -> None:
        """Run the HTTP API and the background loops."""
        settings = settings_type() if port is None else settings_type(port=port)
        configure_logging(name, settings.log_level)
        uvicorn.run(
            create_app(settings),
            host=settings.host,
            port=settings.port,
            log_config=None,
            access_log=False,
            loop="uvloop",
            http="httptools",
            timeout_graceful_shutdown=10,
        )

    @cli.command()
    def migrate() -> None:
        """Bring this service's schema to the latest revision."""
        settings = settings_type()
        upgrade(settings.database_url, name, migrations_dir(name))

    return cli


main = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    help="Leadflow: capture, classify, hand off and follow up leads.",
)


@main.command()
def dev() -> None:
    """Start everything: embedded PostgreSQL and broker, migrations, topics, the four services."""
    from shared.dev import DevSettings, run_dev

    raise typer.Exit(run_dev(DevSettings()))


@main.command()
def migrate() -> None:
    """Migrate every service schema on LEADFLOW_DATABASE_URL."""
    settings = ServiceSettings()
    for service in SERVICES:
        upgrade(settings.database_url, service, migrations_dir(service))
        typer.echo(f"{service}: migrated")


@main.command("import")
def import_csv(
    file: Annotated[Path, typer.Argument(exists=True, dir_okay=False, readable=True, help="The CSV file")],
    key: Annotated[
        str, typer.Option(envvar="LEADFLOW_SOURCE_KEY", help="The source key (an offline source)")
    ],
    url: Annotated[
        str, typer.Option(envvar="LEADFLOW_INGEST_URL", help="Ingest's base URL")
    ] = "http://127.0.0.1:8001",
) -> None:
    """Import leads from a CSV file, with progress, and print the report."""
    from services.ingest.import_cli import ImportRefused, summary, upload_and_follow

    try:
        report = upload_and_follow(file, url, key)
    except ImportRefused as error:
        typer.echo(f"ingest refused the file: {error}", err=True)
        raise typer.Exit(1) from error
    typer.echo(summary(report))
    raise typer.Exit(0 if report["status"] == "done" else 1)
