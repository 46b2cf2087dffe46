"""API tokens people make and revoke themselves: on their account page, through the API and
with `manage.py createtoken`. The secret is handed back once, when a token is made; only its
digest is stored (django-rest-knox)."""

from datetime import timedelta

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Q, QuerySet
from django.utils import timezone

from annotation.access import user_is_admin
from annotation.activity import record
from annotation.models import ActivityEntry, ApiToken

NAME_MAX = 64
# Live tokens (not expired) one person may hold: enough for every pipeline, few enough that
# a script making one per run is stopped before the page becomes a wall of them.
MAX_LIVE = 50
NO_EXPIRY_FOR_ADMINS = "Only admins make tokens that never expire."


def tokens_of(user) -> QuerySet[ApiToken]:
    """Every token of `user`, expired ones too, the newest first."""
    return ApiToken.objects.filter(user=user).order_by("-created", "-id")


def live_tokens(user) -> QuerySet[ApiToken]:
    """The tokens of `user` that have not expired."""
    return ApiToken.objects.filter(user=user).filter(
        Q(expiry__isnull=True) | Q(expiry__gt=timezone.now())
    )


def _lifetime(*, expires: bool, days: int | None, admin: bool) -> timedelta | None:
    """How long a new token lives: API_TOKEN_DAYS, or `days` (no longer than that unless an
    admin makes it), or for ever (admins only)."""
    if not expires:
        if not admin:
            raise ValidationError(NO_EXPIRY_FOR_ADMINS)
        return None
    if days is None:
        return timedelta(days=settings.API_TOKEN_DAYS)
    if days < 1:
        raise ValidationError("A token lives at least one day.")
    if days > settings.API_TOKEN_DAYS and not admin:
        raise ValidationError(
            f"Tokens live at most {settings.API_TOKEN_DAYS} days (API_TOKEN_DAYS); only admins "
            "make longer-lived ones."
        )
    return timedelta(days=days)


def _checked_name(user, name: str) -> str:
    name = (name or "").strip()
    if not name:
        raise ValidationError({"name": "Give the token a name, e.g. what it is for."})
    if len(name) > NAME_MAX:
        raise ValidationError({"name": f"A token's name has at most {NAME_MAX} characters."})
    if live_tokens(user).filter(name__iexact=name).exists():
        raise ValidationError(
            {"name": f"You already have a token named {name!r}: choose another name."}
        )
    return name


def create_token(
    user, name: str, *, expires: bool = True, days: int | None = None, by=None, via: str = ""
) -> tuple[ApiToken, str]:
    """Make a token for `user` named `name` and return it with its secret, which is not
    kept and so can be shown only now. `by` is who makes it (the user unless an admin makes
    it for them): only admins make tokens that never expire (`expires=False`) or live longer
    than API_TOKEN_DAYS. `via` is "command" from manage.py. Raises ValidationError, with
    nothing made, for a missing, long or taken name or too many tokens. Logged, as made by
    `by`."""
    by = by or user
    lifetime = _lifetime(expires=expires, days=days, admin=user_is_admin(by))
    with transaction.atomic():
        # One person's tokens are made one at a time, so the name and the count hold.
        get_user_model().objects.select_for_update().filter(pk=user.pk).first()
        name = _checked_name(user, name)
        if live_tokens(user).count() >= MAX_LIVE:
            raise ValidationError(
                f"You have {MAX_LIVE} tokens, the most one person may hold: revoke one first."
            )
        row, secret = ApiToken.objects.create(user=user, expiry=lifetime, name=name)
        record(
            ActivityEntry.Kind.TOKEN_CREATED,
            actor=by,
            target=row,
            summary=f"Token {name!r}" + (f" for {user.get_username()}" if by != user else ""),
            via=via,
        )
    return row, secret


def revoke_token(user, token_id, *, via: str = "") -> ApiToken:
    """Revoke (delete) the token numbered `token_id`: one's own, or anyone's for an admin.
    Another person's token, or one that is not there, raises ApiToken.DoesNotExist, so that
    nobody learns which numbers exist."""
    tokens = ApiToken.objects.select_related("user")
    if not user_is_admin(user):
        tokens = tokens.filter(user=user)
    try:
        token_id = int(token_id)
    except (TypeError, ValueError):
        raise ApiToken.DoesNotExist from None
    if not 0 < token_id < 2**63:  # past a database's integers: no such token either
        raise ApiToken.DoesNotExist
    with transaction.atomic():
        row = tokens.select_for_update(of=("self",)).get(pk=token_id)
        owner = row.user
        record(
            ActivityEntry.Kind.TOKEN_REVOKED,
            actor=user,
            target=row,
            summary=f"Token {row.name!r}"
            + (f" of {owner.get_username()}" if owner.pk != user.pk else ""),
            via=via,
        )
        row.delete()
    return row
