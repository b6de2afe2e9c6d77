"""A broker that wants TLS, a client certificate or a SASL login, as managed Kafka services do:
every client of a service (its producer, consumers, admin, metrics' health) reaches it with the
LEADFLOW_KAFKA_SECURITY_PROTOCOL settings, and refuses a broker it cannot trust. The broker is
Tansu behind a front that ends TLS and checks the login (tests/kafka_front.py)."""

import ssl
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from aiokafka.errors import KafkaConnectionError, SaslAuthenticationFailed
from pydantic import ValidationError

from services.ingest.app import create_app as create_ingest
from services.ingest.config import IngestSettings
from services.metrics.broker_figures import broker_figures
from services.scoring.app import create_app as create_scoring
from services.scoring.config import ScoringSettings
from shared import topics
from shared.dev_settings import DevSettings
from shared.kafka import Publisher, create_topics, log_ends
from shared.kafka_security import KafkaSecurity, Mechanism
from shared.settings import ServiceSettings
from tests.conftest import ADMIN, Servers, eventually, running, serving
from tests.helpers import create_source, post_lead
from tests.kafka_front import Certificates, kafka_front, make_certificates, server_tls

LOGIN = ("leadflow", "a-password-of-the-brokers")
TOPIC = "security.probe"


@pytest.fixture(scope="module")
def certificates(tmp_path_factory: pytest.TempPathFactory) -> Certificates:
    return make_certificates(tmp_path_factory.mktemp("certificates"))


async def publish_and_count(bootstrap: str, security: KafkaSecurity) -> int:
    """Create the topic, publish one message, and read the log's end: every kind of client."""
    await create_topics(bootstrap, [TOPIC], 1, security=security)
    publisher = Publisher(bootstrap, "leadflow-probe", security)
    try:
        await publisher.publish([(TOPIC, b"k", b"v")])
    finally:
        await publisher.stop()
    return (await log_ends(bootstrap, [TOPIC], security=security))[(TOPIC, 0)]


async def test_tls_with_the_brokers_authority_is_taken(certificates: Certificates, tmp_path: Path) -> None:
    async with kafka_front(server_tls(certificates), None, tmp_path / "broker.log") as front:
        security = KafkaSecurity("SSL", cafile=certificates.ca)
        assert await publish_and_count(front.bootstrap, security) == 1


async def test_a_broker_certificate_no_trusted_authority_signed_is_refused(
    certificates: Certificates, tmp_path: Path
) -> None:
    """Without LEADFLOW_KAFKA_SSL_CAFILE the system's authorities decide: not the test's CA."""
    async with kafka_front(server_tls(certificates), None, tmp_path / "broker.log") as front:
        with pytest.raises(KafkaConnectionError):
            await create_topics(front.bootstrap, [TOPIC], 1, security=KafkaSecurity("SSL"))
        with pytest.raises(KafkaConnectionError):  # nor in the clear
            await create_topics(front.bootstrap, [TOPIC], 1)


async def test_a_broker_asking_for_a_client_certificate_takes_one_its_authority_signed(
    certificates: Certificates, tmp_path: Path
) -> None:
    tls = server_tls(certificates, ask_for_client_certificate=True)
    async with kafka_front(tls, None, tmp_path / "broker.log") as front:
        mine = KafkaSecurity(
            "SSL", cafile=certificates.ca, certfile=certificates.client[0], keyfile=certificates.client[1]
        )
        assert await publish_and_count(front.bootstrap, mine) == 1
        for refused in (
            KafkaSecurity("SSL", cafile=certificates.ca),
            KafkaSecurity(
                "SSL",
                cafile=certificates.ca,
                certfile=certificates.stranger[0],
                keyfile=certificates.stranger[1],
            ),
        ):
            with pytest.raises(KafkaConnectionError):
                await create_topics(front.bootstrap, [TOPIC], 1, security=refused)


@pytest.mark.parametrize("mechanism", ["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"])
async def test_a_sasl_login_over_tls_is_made_and_a_wrong_password_refused(
    certificates: Certificates, tmp_path: Path, mechanism: Mechanism
) -> None:
    """Each mechanism LEADFLOW_KAFKA_SASL_MECHANISM takes, against a broker that speaks it (SCRAM
    is what MSK and Aiven ask for: the password itself never goes over the wire)."""
    async with kafka_front(server_tls(certificates), LOGIN, tmp_path / "broker.log", mechanism) as front:
        right = KafkaSecurity("SASL_SSL", mechanism, *LOGIN, cafile=certificates.ca)
        assert await publish_and_count(front.bootstrap, right) == 1
        wrong = KafkaSecurity("SASL_SSL", mechanism, LOGIN[0], "guessed", cafile=certificates.ca)
        with pytest.raises((SaslAuthenticationFailed, KafkaConnectionError)):
            await create_topics(front.bootstrap, [TOPIC], 1, security=wrong)
        assert front.logins_refused >= 1
        with pytest.raises(KafkaConnectionError):  # TLS without a login
            await create_topics(
                front.bootstrap, [TOPIC], 1, security=KafkaSecurity("SSL", cafile=certificates.ca)
            )


def security_settings(certificates: Certificates) -> dict[str, Any]:
    return {
        "kafka_security_protocol": "SASL_SSL",
        "kafka_sasl_mechanism": "PLAIN",
        "kafka_sasl_username": LOGIN[0],
        "kafka_sasl_password": LOGIN[1],
        "kafka_ssl_cafile": certificates.ca,
    }


@pytest.fixture
async def front(certificates: Certificates, tmp_path: Path) -> AsyncIterator[Any]:
    async with kafka_front(server_tls(certificates), LOGIN, tmp_path / "broker.log") as front:
        security = KafkaSecurity("SASL_SSL", "PLAIN", *LOGIN, cafile=certificates.ca)
        names = [*topics.DOMAIN_TOPICS, *(topics.dlq(g) for g in ("scoring", "nurture", "metrics"))]
        await create_topics(front.bootstrap, names, topics.PARTITIONS, security=security)
        yield front


async def test_a_lead_goes_from_ingest_to_scoring_through_a_broker_that_wants_tls_and_a_login(
    servers: Servers, certificates: Certificates, front: Any
) -> None:
    """Ingest's relay publishes, scoring's consumer reads, metrics' health reads the offsets."""
    options = {"kafka_bootstrap": front.bootstrap, **security_settings(certificates)}
    ingest_app = create_ingest(servers.settings(IngestSettings, **options))
    async with (
        serving(ingest_app) as ingest_url,
        httpx.AsyncClient(base_url=ingest_url, timeout=10) as ingest,
    ):
        scoring_settings = servers.settings(ScoringSettings, ingest_url=ingest_url, **options)
        async with running(create_scoring(scoring_settings)) as scoring:
            source = await create_source(ingest)
            email = f"tls-{uuid.uuid4().hex[:8]}@example.kz"
            lead_id = (await post_lead(ingest, source["key"], email=email)).json()["lead_id"]

            async def classified() -> bool:
                return (await scoring.get(f"/v1/leads/{lead_id}", headers=ADMIN)).status_code == 200

            await eventually(classified, timeout=30)

            async def caught_up() -> bool:
                problems: list[str] = []
                lags, _ = await broker_figures(front.bootstrap, problems, scoring_settings.kafka_security)
                assert problems == []
                return sum(lags["scoring"].values()) == 0

            await eventually(caught_up, timeout=30)  # scoring committed what it read
    assert front.logins_refused == 0


def refusals(**values: Any) -> list[str]:
    with pytest.raises(ValidationError) as refused:
        ServiceSettings(**values)
    return [line for error in refused.value.errors() for line in str(error["msg"]).splitlines()]


def test_a_login_without_its_parts_is_refused_naming_each(certificates: Certificates) -> None:
    assert refusals(kafka_security_protocol="SASL_SSL", kafka_sasl_username="me") == [
        "Value error, LEADFLOW_KAFKA_SASL_MECHANISM must be set with SASL_SSL",
        "LEADFLOW_KAFKA_SASL_PASSWORD must be set with SASL_SSL",
    ]


def test_settings_that_would_go_unused_are_refused(certificates: Certificates) -> None:
    said = refusals(kafka_sasl_username="me", kafka_ssl_cafile=certificates.ca)
    assert said == [
        "Value error, LEADFLOW_KAFKA_SASL_USERNAME would not be used: LEADFLOW_KAFKA_SECURITY_PROTOCOL is"
        " PLAINTEXT (SASL_SSL or SASL_PLAINTEXT logs in)",
        "LEADFLOW_KAFKA_SSL_CAFILE would not be used: LEADFLOW_KAFKA_SECURITY_PROTOCOL is PLAINTEXT"
        " (SSL or SASL_SSL uses TLS)",
    ]
    assert refusals(kafka_security_protocol="SSL", kafka_ssl_certfile=certificates.client[0]) == [
        "Value error, LEADFLOW_KAFKA_SSL_CERTFILE and LEADFLOW_KAFKA_SSL_KEYFILE go together"
    ]


def test_a_certificate_file_that_is_not_there_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValidationError, match="kafka_ssl_cafile"):
        ServiceSettings(kafka_security_protocol="SSL", kafka_ssl_cafile=tmp_path / "missing.pem")


def test_the_password_is_never_shown(certificates: Certificates) -> None:
    settings = ServiceSettings(**security_settings(certificates))
    assert LOGIN[1] not in repr(settings) and LOGIN[1] not in repr(settings.kafka_security)
    assert settings.kafka_security.client_options()["sasl_plain_password"] == LOGIN[1]
    assert isinstance(settings.kafka_security.client_options()["ssl_context"], ssl.SSLContext)


def test_leadflow_dev_says_its_embedded_broker_speaks_plaintext(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("LEADFLOW_KAFKA_BOOTSTRAP", raising=False)
    with pytest.raises(ValidationError, match="the embedded one speaks PLAINTEXT"):
        DevSettings(kafka_security_protocol="SSL")
    assert (
        DevSettings(kafka_bootstrap="kafka:9093", kafka_security_protocol="SSL").kafka_security.protocol
        == "SSL"
    )
