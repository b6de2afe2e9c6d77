"""The embedded PostgreSQL's password: other accounts on the machine reach 127.0.0.1 too.

Connections over TCP need the superuser's password (SCRAM-SHA-256); the Unix socket, in the
0700 data directory, stays open to the server's own user, which owns the data anyway. The
password is random, made at the first start, and kept 0600 beside the data directory (where
`leadflow seed` and the tests' stacks read it); each start sets it again, so a data directory
made before there was one, or a password file deleted, takes the file's."""

import base64
import hashlib
import hmac
import os
import secrets
from pathlib import Path

SCRAM_ITERATIONS = 4096  # PostgreSQL's own default (scram_iterations)

HBA = """\
# Written by Leadflow at each start of its embedded PostgreSQL.
# The socket is in the 0700 data directory: only the server's user reaches it.
local all all trust
# Anyone on this machine reaches 127.0.0.1: the password (beside the data directory) is needed.
host all all 127.0.0.1/32 scram-sha-256
host all all ::1/128 scram-sha-256
"""


def password_file(data_dir: Path) -> Path:
    """Where the password of the server with data in `data_dir` is kept."""
    return data_dir.parent / f"{data_dir.name}.password"


def read_password(data_dir: Path) -> str | None:
    """The password of the server with data in `data_dir`, if it was ever started."""
    return read_secret(password_file(data_dir))


def kept_password(data_dir: Path) -> str:
    """The password of the server with data in `data_dir`; made (0600) if there is none yet."""
    return kept_secret(password_file(data_dir))


def read_secret(path: Path) -> str | None:
    """The secret kept in `path`, if there is one (an empty file keeps none)."""
    try:
        return path.read_text().strip() or None
    except FileNotFoundError:
        return None


def kept_secret(path: Path) -> str:
    """The secret kept in `path`; made (random, 0600) if there is none yet. Written whole to a
    file of its own, synced, then linked into place: a first start cut short (a full disk, a
    power cut) left an empty file, and every start after failed with "maximum recursion depth
    exceeded" (found by a review). An empty one is replaced."""
    if (kept := read_secret(path)) is not None:
        return kept
    path.parent.mkdir(parents=True, exist_ok=True)
    made = secrets.token_urlsafe(32)  # letters, digits, - and _: nothing to quote in a URL
    written = path.with_name(f".{path.name}.{os.getpid()}")
    descriptor = os.open(written, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        with os.fdopen(descriptor, "w") as file:
            file.write(made + "\n")
            file.flush()
            os.fsync(file.fileno())
        try:
            os.link(written, path)  # only where there is none
        except FileExistsError:
            if (kept := read_secret(path)) is not None:  # another start made it first
                return kept
            os.replace(written, path)  # an empty one, left by a start cut short
        return made
    finally:
        written.unlink(missing_ok=True)


def scram_verifier(password: str, salt: bytes | None = None) -> str:
    """What PostgreSQL stores for a SCRAM-SHA-256 password (RFC 5802, 7677): given as the
    role's password, the password itself never reaches the server or its log."""
    salt = salt if salt is not None else secrets.token_bytes(16)
    salted = hashlib.pbkdf2_hmac("sha256", password.encode(), salt, SCRAM_ITERATIONS)
    client_key = hmac.digest(salted, b"Client Key", "sha256")
    stored_key = hashlib.sha256(client_key).digest()
    server_key = hmac.digest(salted, b"Server Key", "sha256")

    def b64(data: bytes) -> str:
        return base64.b64encode(data).decode()

    return f"SCRAM-SHA-256${SCRAM_ITERATIONS}:{b64(salt)}${b64(stored_key)}:{b64(server_key)}"
