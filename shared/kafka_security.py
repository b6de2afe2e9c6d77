"""How the Kafka clients reach a broker that wants TLS, a client certificate or a login (SASL),
as managed Kafka services do: the LEADFLOW_KAFKA_SECURITY_PROTOCOL family of settings, and the
aiokafka options they make. Every client of a process (producer, consumers, admin) uses them."""

import ssl
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from aiokafka.helpers import create_ssl_context
from pydantic import BaseModel, FilePath, SecretStr

Protocol = Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"]
Mechanism = Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"]


@dataclass(frozen=True)
class KafkaSecurity:
    """What a client says to the broker beyond its address; PLAINTEXT (nothing) by default."""

    protocol: Protocol = "PLAINTEXT"
    mechanism: Mechanism | None = None
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    cafile: Path | None = None  # None: the system's certificate authorities
    certfile: Path | None = None  # a client certificate, for brokers that ask for one
    keyfile: Path | None = None

    def client_options(self) -> dict[str, Any]:
        """The keyword arguments of an aiokafka producer, consumer or admin client."""
        options: dict[str, Any] = {"security_protocol": self.protocol}
        if self.protocol in ("SSL", "SASL_SSL"):
            options["ssl_context"] = self.ssl_context()
        if self.protocol in ("SASL_PLAINTEXT", "SASL_SSL"):
            options |= {
                "sasl_mechanism": self.mechanism,
                "sasl_plain_username": self.username,
                "sasl_plain_password": self.password,
            }
        return options

    def ssl_context(self) -> ssl.SSLContext:
        """The broker's certificate checked against `cafile` (or the system's authorities) and
        its name; the client's certificate shown when one is given."""
        return create_ssl_context(
            cafile=None if self.cafile is None else str(self.cafile),
            certfile=None if self.certfile is None else str(self.certfile),
            keyfile=None if self.keyfile is None else str(self.keyfile),
        )


PLAINTEXT = KafkaSecurity()


class KafkaSecuritySettings(BaseModel):
    """The settings, for the services' and `leadflow dev`'s own (an existing broker's topics)."""

    kafka_security_protocol: Protocol = "PLAINTEXT"
    kafka_sasl_mechanism: Mechanism | None = None
    kafka_sasl_username: str | None = None
    kafka_sasl_password: SecretStr | None = None
    kafka_ssl_cafile: FilePath | None = None
    kafka_ssl_certfile: FilePath | None = None
    kafka_ssl_keyfile: FilePath | None = None

    @property
    def kafka_security(self) -> KafkaSecurity:
        password = self.kafka_sasl_password
        return KafkaSecurity(
            self.kafka_security_protocol,
            self.kafka_sasl_mechanism,
            self.kafka_sasl_username,
            None if password is None else password.get_secret_value(),
            self.kafka_ssl_cafile,
            self.kafka_ssl_certfile,
            self.kafka_ssl_keyfile,
        )

    def kafka_security_refusals(self) -> list[str]:
        """What is missing or would go unused, each naming its variables."""
        protocol, reasons = self.kafka_security_protocol, []
        login = {
            "LEADFLOW_KAFKA_SASL_MECHANISM": self.kafka_sasl_mechanism,
            "LEADFLOW_KAFKA_SASL_USERNAME": self.kafka_sasl_username,
            "LEADFLOW_KAFKA_SASL_PASSWORD": self.kafka_sasl_password,
        }
        tls = {
            "LEADFLOW_KAFKA_SSL_CAFILE": self.kafka_ssl_cafile,
            "LEADFLOW_KAFKA_SSL_CERTFILE": self.kafka_ssl_certfile,
            "LEADFLOW_KAFKA_SSL_KEYFILE": self.kafka_ssl_keyfile,
        }
        unused = f"would not be used: LEADFLOW_KAFKA_SECURITY_PROTOCOL is {protocol}"
        if protocol.startswith("SASL_"):
            reasons += [f"{name} must be set with {protocol}" for name, value in login.items() if not value]
        elif given := [name for name, value in login.items() if value]:
            reasons.append(f"{', '.join(given)} {unused} (SASL_SSL or SASL_PLAINTEXT logs in)")
        if not protocol.endswith("SSL") and (given := [name for name, value in tls.items() if value]):
            reasons.append(f"{', '.join(given)} {unused} (SSL or SASL_SSL uses TLS)")
        if (self.kafka_ssl_certfile is None) != (self.kafka_ssl_keyfile is None):
            reasons.append("LEADFLOW_KAFKA_SSL_CERTFILE and LEADFLOW_KAFKA_SSL_KEYFILE go together")
        return reasons
