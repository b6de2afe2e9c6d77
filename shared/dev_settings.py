"""`leadflow dev`'s settings (LEADFLOW_* variables): where the stack keeps its data, which parts
run and on which ports and address, and the tokens it shows; refused before anything starts."""

import os
import re
from pathlib import Path
from urllib.parse import urlsplit

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from shared.cli import PROJECT_DIR, SERVICES
from shared.embedded import dialled
from shared.kafka_security import KafkaSecuritySettings
from shared.postgres_password import read_password
from shared.settings import DEV_ADMIN_TOKEN, DEV_VIEWER_TOKEN, MIN_TOKEN_LENGTH, is_loopback

# Parts of a service in a process of their own (part → service, its command): a hot lead's
# hand-off to its rep never waits for nurture's follow-up work, on the event loop or the CPU.
APART = {"hand-off": ("nurture", "hand-off")}
PARTS = (*SERVICES, *APART)
# Niceness of the processes off a hot lead's way to its rep: metrics' read model and nurture's
# follow-up yield the CPU to the hand-off path when both want it, and catch up when it is free.
BACKGROUND = {"metrics": 10, "nurture": 10}

DATABASE_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,62}")


class DevSettings(BaseSettings, KafkaSecuritySettings):
    """Where the dev stack keeps its data and which ports it uses (LEADFLOW_* variables)."""

    model_config = SettingsConfigDict(env_prefix="LEADFLOW_", extra="ignore", hide_input_in_errors=True)

    # The clone's own, wherever `leadflow dev` is started from: relative to the folder it was
    # started in, a start from elsewhere (a service unit with no working directory) brought up
    # a new, empty stack, and the website's source keys were refused.
    home: Path = PROJECT_DIR / ".leadflow"
    host: str = "127.0.0.1"  # where the services listen; the servers stay on 127.0.0.1
    database_url: str | None = None
    kafka_bootstrap: str | None = None
    pg_port: int = Field(54329, ge=1, le=65535)
    kafka_port: int = Field(9092, ge=1, le=65535)
    database: str = "leadflow"
    admin_token: SecretStr = SecretStr(DEV_ADMIN_TOKEN)
    viewer_token: SecretStr | None = None
    ports: dict[str, int] = Field(default_factory=dict)
    only: str = Field("", description="Run only these services (comma-separated), e.g. `ingest`.")
    # Each part's log is kept under this; past it, it is moved to <part>.log.1 and starts again.
    log_max_mb: int = Field(100, ge=1)
    # What says others reach the services on loopback through a proxy (`ServiceSettings.exposed`).
    trusted_proxies: str = ""
    ingest_public_url: str | None = Field(None, validation_alias="LEADFLOW_INGEST_PUBLIC_URL")
    nurture_public_url: str | None = Field(None, validation_alias="LEADFLOW_NURTURE_PUBLIC_URL")

    @property
    def log_max_bytes(self) -> int:
        return self.log_max_mb * 1024 * 1024

    @field_validator("only")
    @classmethod
    def _known_services(cls, value: str) -> str:
        # Refused before PostgreSQL and the broker start, not after (seconds later).
        unknown = {name.strip() for name in value.split(",") if name.strip()} - set(SERVICES)
        if unknown:
            raise ValueError(
                f"names unknown services: {', '.join(sorted(unknown))} (known: {', '.join(SERVICES)})"
            )
        return value

    @model_validator(mode="after")
    def _ports_of_the_parts(self) -> "DevSettings":
        for part in PARTS:  # read by port_of, from the environment
            variable = f"LEADFLOW_{part.upper().replace('-', '_')}_PORT"
            value = os.environ.get(variable)
            if value is not None and not (value.strip().isdigit() and 1 <= int(value) <= 65535):
                raise ValueError(f"{variable} must be a TCP port, 1 to 65535")
        return self

    @model_validator(mode="after")
    def _kafka_security_for_an_existing_broker(self) -> "DevSettings":
        # The services are given the same variables (their environment is this one's).
        reasons = self.kafka_security_refusals()
        if self.kafka_bootstrap is None and self.kafka_security_protocol != "PLAINTEXT":
            reasons.append(
                f"LEADFLOW_KAFKA_SECURITY_PROTOCOL={self.kafka_security_protocol} is for an existing broker"
                " (LEADFLOW_KAFKA_BOOTSTRAP); the embedded one speaks PLAINTEXT"
            )
        if reasons:
            raise ValueError("\n".join(reasons))
        return self

    @model_validator(mode="after")
    def _tokens_long_enough_and_a_database_name(self) -> "DevSettings":
        # Said here, before anything starts: the services refused a short token only once
        # PostgreSQL, the broker and the migrations had run, and PostgreSQL a name it cannot
        # take as "syntax error at or near …".
        reasons = [
            f"LEADFLOW_{name}_TOKEN must be at least {MIN_TOKEN_LENGTH} characters"
            for name, token in (("ADMIN", self.admin_token), ("VIEWER", self.viewer_token))
            if token is not None and len(token.get_secret_value()) < MIN_TOKEN_LENGTH
        ]
        if not DATABASE_NAME.fullmatch(self.database):
            reasons.append(
                "LEADFLOW_DATABASE must be a database name: letters, digits and _, not first a digit,"
                " up to 63 characters"
            )
        if reasons:
            raise ValueError("\n".join(reasons))
        return self

    @model_validator(mode="after")
    def _own_tokens_where_others_reach(self) -> "DevSettings":
        # The services refuse the published development tokens beyond loopback, but only once
        # PostgreSQL, the broker and the migrations had run; said here, before anything starts.
        if is_loopback(self.host) and (proxy := self._proxy_named()) is None:
            return self
        where = f"on {self.host}" if not is_loopback(self.host) else f"behind a proxy ({proxy} is set)"
        if self.admin_token.get_secret_value() == DEV_ADMIN_TOKEN:
            there = "there" if not is_loopback(self.host) else "through it"
            raise ValueError(
                f"LEADFLOW_ADMIN_TOKEN must be set, not to the development token, {where}:"
                f" other machines reach the services {there}"
            )
        if self.viewer_token is not None and self.viewer_token.get_secret_value() == DEV_VIEWER_TOKEN:
            raise ValueError(f"LEADFLOW_VIEWER_TOKEN must not be the development token {where}")
        return self

    def _proxy_named(self) -> str | None:
        """The setting that says a proxy passes others' requests to the services, if one does."""
        for variable, url in (
            ("LEADFLOW_INGEST_PUBLIC_URL", self.ingest_public_url),
            ("LEADFLOW_NURTURE_PUBLIC_URL", self.nurture_public_url),
        ):
            if url and not is_loopback(urlsplit(url).hostname or ""):
                return variable
        return "LEADFLOW_TRUSTED_PROXIES" if self.trusted_proxies.strip() else None

    @property
    def viewer_token_shown(self) -> str:
        """How the start's summary names the viewer token, never printing one set by the operator."""
        if self.viewer_token is not None:
            return "the one in LEADFLOW_VIEWER_TOKEN"
        if is_loopback(self.host):
            return DEV_VIEWER_TOKEN
        return "none (LEADFLOW_VIEWER_TOKEN is not set: reads take the admin token)"

    @property
    def services(self) -> tuple[str, ...]:
        wanted = {name.strip() for name in self.only.split(",") if name.strip()}
        unknown = wanted - set(SERVICES)
        if unknown:
            raise ValueError(f"LEADFLOW_ONLY names unknown services: {', '.join(sorted(unknown))}")
        return tuple(s for s in SERVICES if s in wanted) if wanted else SERVICES

    @property
    def parts(self) -> tuple[str, ...]:
        """The services, and the parts of them that run apart."""
        return (*self.services, *(part for part, (service, _) in APART.items() if service in self.services))

    @property
    def stack_database_url(self) -> str:
        """The database `leadflow dev` runs on: the configured one, or its embedded PostgreSQL."""
        if self.database_url:
            return self.database_url
        password = read_password(self.home / "postgres")  # None: it was never started here
        user = "postgres" if password is None else f"postgres:{password}"
        return f"postgresql+asyncpg://{user}@127.0.0.1:{self.pg_port}/{self.database}"

    def variable_of(self, port: int) -> str:
        """The setting that chose `port`."""
        named = {self.pg_port: "LEADFLOW_PG_PORT", self.kafka_port: "LEADFLOW_KAFKA_PORT"}
        named |= {self.port_of(p): f"LEADFLOW_{p.upper().replace('-', '_')}_PORT" for p in self.parts}
        return named.get(port, "its port setting")

    def port_of(self, part: str) -> int:
        default = 8001 + PARTS.index(part)
        variable = f"LEADFLOW_{part.upper().replace('-', '_')}_PORT"
        return int(os.environ.get(variable, self.ports.get(part, default)))

    def url_of(self, part: str) -> str:
        """Where the services and this machine reach `part`: its port on LEADFLOW_HOST."""
        return f"http://{dialled(self.host)}:{self.port_of(part)}"
