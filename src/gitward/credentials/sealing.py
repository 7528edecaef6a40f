"""Encryption for the two secrets the server must use again: TOTP seeds and OAuth consumer
secrets (which verify HS256 JWTs). Everything else is stored as a keyed hash.

The key is derived from the server secret with HKDF-SHA256 (a separate key per purpose), and
values are sealed with Fernet (AES-128-CBC + HMAC-SHA256, authenticated).
"""

from __future__ import annotations

import base64

from cryptography.fernet import Fernet, InvalidToken
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF


class SealError(ValueError):
    pass


class Sealer:
    def __init__(self, server_secret: bytes, purpose: str) -> None:
        key = HKDF(
            algorithm=hashes.SHA256(),
            length=32,
            salt=b"gitward-sealing-v1",
            info=purpose.encode("utf-8"),
        ).derive(server_secret)
        self._fernet = Fernet(base64.urlsafe_b64encode(key))

    def seal(self, plaintext: str) -> str:
        return self._fernet.encrypt(plaintext.encode("utf-8")).decode("ascii")

    def unseal(self, sealed: str) -> str:
        try:
            return self._fernet.decrypt(sealed.encode("ascii")).decode("utf-8")
        except (InvalidToken, ValueError) as error:
            raise SealError("sealed value cannot be opened with this server secret") from error
