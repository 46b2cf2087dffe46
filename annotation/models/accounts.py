"""API tokens: what people's scripts and pipelines sign in to the API with."""

from django.db import models
from knox.models import AbstractAuthToken
from knox.settings import CONSTANTS


class ApiToken(AbstractAuthToken):
    """One API token of one person, sent as `Authorization: Token <secret>`. The secret is
    shown once, when the token is made; only its SHA-512 digest is kept, with its first
    characters (`token_key`) to find the row. django-rest-knox's token, with a name, the
    time it was last used and a plain id (knox's primary key is the digest, which would
    then appear in URLs). `expiry` null: the token never expires (admins only); revoking
    deletes the row. Made and revoked only through annotation.accounts.tokens."""

    id = models.BigAutoField(primary_key=True)
    digest = models.CharField(max_length=CONSTANTS.DIGEST_LENGTH, unique=True)
    name = models.CharField(max_length=64, help_text="What the token is for, e.g. ci.")
    # Written at most once a minute per token (annotation.accounts.authentication), so that
    # answering a request does not also write a row.
    last_used_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name = "API token"

    def __str__(self) -> str:
        # Never the secret, nor its digest: this is what the activity log shows.
        return f"{self.name} ({self.user})"
