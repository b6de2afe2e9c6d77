"""Secrets we must be able to read back (webhook signing secrets) are stored sealed:
encrypted with a key that lives only in the environment (Fernet: AES-128-CBC with an
HMAC-SHA256, from `cryptography`). A database dump alone does not reveal them.

The key can change: the previous keys still open what they sealed (`MultiFernet`), and
`reseal` seals such a value again with the current key, so the old key can be dropped once
every stored secret has been sealed again."""

import base64
import hashlib
from collections.abc import Sequence

from cryptography.fernet import Fernet, InvalidToken, MultiFernet

PREFIX = "sealed:v1:"


def _fernet(key_material: str) -> Fernet:
    key = hashlib.sha256(b"leadflow.sealing:" + key_material.encode()).digest()
    return Fernet(base64.urlsafe_b64encode(key))


class SecretBox:
    def __init__(self, key_material: str, previous: Sequence[str] = ()) -> None:
        """Seals with `key_material`; opens with it or any of the `previous` keys."""
        self._current = _fernet(key_material)
        self._any = MultiFernet([self._current, *(_fernet(material) for material in previous)])

    def seal(self, value: str) -> str:
        return PREFIX + self._current.encrypt(value.encode()).decode()

    def open(self, stored: str) -> str:
        """The secret; a value stored before sealing existed is returned as it is."""
        if not stored.startswith(PREFIX):
            return stored
        try:
            return self._any.decrypt(stored[len(PREFIX) :].encode()).decode()
        except InvalidToken as error:
            raise ValueError("a sealed secret does not open with this LEADFLOW_SECRET_KEY") from error

    def reseal(self, stored: str) -> str | None:
        """`stored` sealed with the current key, when it was sealed with a previous one or stored
        before sealing existed; None when the current key sealed it already. Raises ValueError
        when no key opens it."""
        if stored.startswith(PREFIX):
            try:
                self._current.decrypt(stored[len(PREFIX) :].encode())
                return None
            except InvalidToken:
                pass
        return self.seal(self.open(stored))


def settings_box(secret_key: str | None, previous: str | None, admin_token: str) -> SecretBox:
    """The box of a service's settings: seals with LEADFLOW_SECRET_KEY (in development, when
    unset, a key made from the admin token); opens with it, LEADFLOW_SECRET_KEY_PREVIOUS, or the
    development key, so what a stack sealed before it was given a key still opens."""
    development = "dev:" + admin_token
    material = secret_key or development
    return SecretBox(material, [*([previous] if previous else []), *([development] if secret_key else [])])
