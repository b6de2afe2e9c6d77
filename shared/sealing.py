"""Secrets we must be able to read back (webhook signing secrets) are stored sealed:
encrypted with a key that lives only in the environment (Fernet: AES-128-CBC with an
HMAC-SHA256, from `cryptography`). A database dump alone does not reveal them."""

import base64
import hashlib

from cryptography.fernet import Fernet, InvalidToken

PREFIX = "sealed:v1:"


class SecretBox:
    def __init__(self, key_material: str) -> None:
        key = hashlib.sha256(b"leadflow.sealing:" + key_material.encode()).digest()
        self._fernet = Fernet(base64.urlsafe_b64encode(key))

    def seal(self, value: str) -> str:
        return PREFIX + self._fernet.encrypt(value.encode()).decode()

    def open(self, stored: str) -> str:
        """The secret; a value stored before sealing existed is returned as it is."""
        if not stored.startswith(PREFIX):
            return stored
        try:
            return self._fernet.decrypt(stored[len(PREFIX) :].encode()).decode()
        except InvalidToken as error:
            raise ValueError("a sealed secret does not open with this LEADFLOW_SECRET_KEY") from error
