"""How the API knows a script by its token: `Authorization: Token <secret>`, checked against
the stored digest of each API token (django-rest-knox)."""

from datetime import timedelta
from hmac import compare_digest

from django.db.models import Q
from django.utils import timezone
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from drf_spectacular.plumbing import build_bearer_security_scheme_object
from knox.auth import TokenAuthentication
from knox.crypto import hash_token
from knox.settings import CONSTANTS
from rest_framework.exceptions import AuthenticationFailed

from annotation.models import ApiToken

# A token's last use is written when the one stored is older than this: a pipeline sending
# a request a second costs one write a minute, not one a request.
LAST_USED_EVERY = timedelta(minutes=1)
INVALID = "Invalid token: it was revoked, or never existed."


class ApiTokenAuthentication(TokenAuthentication):
    """knox's check of the secret's digest, with what knox leaves out or does differently:
    a token that expired is refused with a message that says so and stays listed on its
    owner's account page (knox deletes it, and reads all of its owner's tokens on every
    request to delete theirs too); the token's last use is noted; a header that is not text
    is an invalid token, not an error. Tokens of any length authenticate, so the 40-character
    keys of earlier versions, migrated, keep working."""

    def authenticate_credentials(self, token: bytes):
        try:
            secret = token.decode("ascii")
        except UnicodeDecodeError:
            raise AuthenticationFailed(INVALID) from None
        digest = hash_token(secret)
        candidates = ApiToken.objects.filter(token_key=secret[: CONSTANTS.TOKEN_KEY_LENGTH])
        for row in candidates.select_related("user"):
            if compare_digest(digest, row.digest):
                break
        else:
            raise AuthenticationFailed(INVALID)
        now = timezone.now()
        if row.expiry is not None and row.expiry <= now:
            raise AuthenticationFailed(
                f"This token ({row.name!r}) expired on {row.expiry:%Y-%m-%d %H:%M} UTC: make "
                "a new one on your account page."
            )
        user, row = self.validate_user(row)
        note_use(row, now)
        return user, row


def note_use(row: ApiToken, now) -> None:
    """Set the token's last use to now unless it was set less than LAST_USED_EVERY ago. The
    condition is in the UPDATE too, so that web processes answering the same token at once
    write it once."""
    if row.last_used_at is not None and now - row.last_used_at < LAST_USED_EVERY:
        return
    stale = Q(last_used_at__isnull=True) | Q(last_used_at__lt=now - LAST_USED_EVERY)
    ApiToken.objects.filter(stale, pk=row.pk).update(last_used_at=now)
    row.last_used_at = now


class ApiTokenScheme(OpenApiAuthenticationExtension):
    """The schema's name for token authentication: `Authorization: Token <secret>`."""

    target_class = ApiTokenAuthentication
    name = "tokenAuth"

    def get_security_definition(self, auto_schema):
        return build_bearer_security_scheme_object(
            header_name="Authorization", token_prefix=self.target.authenticate_header(None)
        )
