"""API keys at rest: encrypted with a key derived from SECRET_KEY (Fernet: AES with an HMAC),
so a database dump alone does not give them away. Changing SECRET_KEY makes stored keys
unreadable: enter them again, or name an environment variable of the workers instead: one
meant for judges, never any other of the workers' secrets."""

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


def key_variable_refused(name: str) -> str | None:
    """Why a judge may not send the workers' environment variable `name` as its key, or None
    when it may: names ending in _API_KEY and those JUDGE_KEY_VARIABLES lists. Any other
    variable (the database's URL, SECRET_KEY, a cloud's credentials) would go out in the
    Authorization header to whatever endpoint the judge names."""
    if name.endswith("_API_KEY") or name in settings.JUDGE_KEY_VARIABLES:
        return None
    return (
        f"${name} is not a judge's key variable: name one that ends in _API_KEY, or list it "
        "in JUDGE_KEY_VARIABLES on the web and worker hosts."
    )
