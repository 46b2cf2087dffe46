"""API keys at rest: encrypted with a key derived from SECRET_KEY (Fernet: AES with an HMAC),
so a database dump alone does not give them away. Changing SECRET_KEY makes stored keys
unreadable: enter them again, or name an environment variable of the workers instead."""

import base64
import hashlib

from cryptography.fernet import Fernet, InvalidToken
from django.conf import settings

PURPOSE = b"prefhub: judge API keys"


class KeyUnreadable(Exception):
    """The stored key was encrypted under another SECRET_KEY."""


def _fernet() -> Fernet:
    derived = hashlib.pbkdf2_hmac("sha256", settings.SECRET_KEY.encode(), PURPOSE, 100_000)
    return Fernet(base64.urlsafe_b64encode(derived))


def encrypt(secret: str) -> str:
    return _fernet().encrypt(secret.encode()).decode()


def decrypt(token: str) -> str:
    try:
        return _fernet().decrypt(token.encode()).decode()
    except InvalidToken:
        raise KeyUnreadable(
            "The stored API key cannot be read (SECRET_KEY changed?): enter it again."
        ) from None
