"""What a command says when it cannot start: a setting it refuses, a PostgreSQL it cannot reach.
One line each, naming the variable or the server, never a value or a password; not a traceback."""

import re
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

import typer
from asyncpg.exceptions import (
    CannotConnectNowError,
    InvalidAuthorizationSpecificationError,
    InvalidCatalogNameError,
)
from pydantic import ValidationError
from pydantic_settings import BaseSettings, SettingsError
from sqlalchemy.engine import make_url

from shared.redact import describe

# PostgreSQL down or not there, no such database or role, a wrong password, still starting up.
UNREACHABLE = (
    OSError,
    InvalidCatalogNameError,
    InvalidAuthorizationSpecificationError,
    CannotConnectNowError,
)
B = TypeVar("B", bound=BaseSettings)


def unreachable(database_url: str, error: BaseException) -> str:
    """ "cannot reach PostgreSQL at host:port/database (why)", without the password."""
    url = make_url(database_url)
    return f"cannot reach PostgreSQL at {url.host}:{url.port or 5432}/{url.database} ({describe(error)})"


@contextmanager
def reaching_postgres(program: str, database_url: str) -> Iterator[None]:
    """A PostgreSQL the block cannot reach ends the command with one line saying where and why,
    not a traceback (a migrate Job's log); the password is never shown."""
    try:
        yield
    except UNREACHABLE as error:
        typer.echo(f"{program}: {unreachable(database_url, error)}", err=True)
        raise typer.Exit(1) from error


def load_settings(program: str, settings_type: type[B], **values: Any) -> B:
    """The settings from the environment; a refused one ends the command with a line per reason
    naming its variable, not a traceback (and never its value: it may be a secret)."""
    try:
        return settings_type(**values)
    except ValidationError as error:
        reasons = [
            refusal(settings_type, e["loc"], line) for e in error.errors() for line in e["msg"].splitlines()
        ]
    except SettingsError as error:  # a JSON value (a list) that does not parse
        field = re.search(r'field "(\w+)"', str(error))
        reasons = [refusal(settings_type, (field[1],) if field else (), "is not valid JSON")]
    for reason in reasons:
        typer.echo(f"{program}: configuration refused: {reason}", err=True)
    raise typer.Exit(2)


def refusal(settings_type: type[BaseSettings], loc: tuple[Any, ...], message: str) -> str:
    """ "LEADFLOW_DB_POOL_SIZE: Input should be ...": the variable a field is read from, and why."""
    message = message.removeprefix("Value error, ")
    if not loc:
        return message  # a rule across fields: its message names the variables
    name = str(loc[0])
    field = settings_type.model_fields.get(name)
    if field is not None and isinstance(field.validation_alias, str):
        name = field.validation_alias
    prefix = str(settings_type.model_config.get("env_prefix", ""))
    variable = name if name.startswith(prefix) else f"{prefix}{name}".upper()
    return f"{variable}: {message}"
