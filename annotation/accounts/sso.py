"""Signing in through an OpenID Connect provider, as django-allauth's adapters: who may, which
account they land in (a new one, or theirs linked by a verified e-mail address), and the
projects their groups at the provider join. A refusal sends the person back to the login
page with the reason and logs it in the activity log."""

import logging
from urllib.parse import urlencode

from allauth.account.adapter import DefaultAccountAdapter
from allauth.account.adapter import get_adapter as get_account_adapter
from allauth.account.utils import user_email, user_username
from allauth.core.exceptions import ImmediateHttpResponse
from allauth.socialaccount.adapter import DefaultSocialAccountAdapter
from allauth.socialaccount.providers.base import AuthError
from django.conf import settings
from django.contrib import messages
from django.contrib.auth import get_user_model
from django.http import HttpResponseRedirect
from django.urls import reverse

from annotation.activity import record
from annotation.models import ActivityEntry, Membership, Project

logger = logging.getLogger(__name__)
Kind = ActivityEntry.Kind
RANK = {Membership.Role.ANNOTATOR: 0, Membership.Role.LEAD: 1}


def back_to_login(request, *, message: str, summary: str, who: str = "", next_url: str = ""):
    """The login page again, with `message` for the person; `summary` goes to the activity log
    as a failed sign-in by `who` (an e-mail address or name, where one is known)."""
    record(Kind.SIGN_IN_FAILED, summary=summary, actor_name=who)
    messages.error(request, message)
    url = reverse("login")
    if next_url:
        url += "?" + urlencode({"next": next_url})
    return HttpResponseRedirect(url)


def or_the_password() -> str:
    return ", or sign in with your password" if settings.PASSWORD_LOGIN else ""


def claims_of(sociallogin) -> dict:
    """What the provider said about the person: its user info over the ID token's claims."""
    data = sociallogin.account.extra_data or {}
    return {**(data.get("id_token") or {}), **(data.get("userinfo") or {})}


def verified_email(claims: dict) -> str:
    """The person's e-mail address where the provider vouches for it (email_verified), else
    an empty string. Some providers send the flag as the text "true"."""
    email = claims.get("email")
    if isinstance(email, str) and "@" in email and claims.get("email_verified") in (True, "true"):
        return email.strip()
    return ""


def groups_of(claims: dict, claim: str) -> list[str]:
    value = claims.get(claim) or []
    return [value] if isinstance(value, str) else [g for g in value if isinstance(g, str)]


def memberships_join_from_groups(
    *, user, groups: list[str], joins: dict[str, list[dict]], provider_name: str
) -> None:
    """Put `user` in the projects their `groups` join (`joins`: a group's
    [{"project", "role"}]), each at the highest role any of their groups gives there. A role
    is raised, never lowered, and nobody is taken off a project: leads and admins decide
    that on the project's page. A project that does not exist is skipped with a warning."""
    wanted: dict[str, tuple[str, str]] = {}  # project name -> (role, the group that gives it)
    for group in groups:
        for join in joins.get(group, []):
            held = wanted.get(join["project"])
            if held is None or RANK[join["role"]] > RANK[held[0]]:
                wanted[join["project"]] = (join["role"], group)
    projects = {project.name: project for project in Project.objects.filter(name__in=wanted)}
    for name in sorted(set(wanted) - set(projects)):
        logger.warning("%s: a group joins project %r, which does not exist", provider_name, name)
    for name, project in projects.items():
        role, group = wanted[name]
        through = f"through group {group} of {provider_name}"
        membership, created = Membership.objects.get_or_create(
            project=project, user=user, defaults={"role": role}
        )
        if created:
            record(Kind.MEMBER_ADDED, actor=user, project=project, target=membership,
                   summary=f"Joined as {role} {through}")  # fmt: skip
        elif RANK[role] > RANK[membership.role]:
            before, membership.role = membership.role, role
            membership.save(update_fields=["role"])
            record(Kind.MEMBER_CHANGED, actor=user, project=project, target=membership,
                   summary=f"Made {role} {through}", changes={"role": (before, role)})  # fmt: skip


class AccountAdapter(DefaultAccountAdapter):
    """allauth's account side serves single sign-on only: Django's own views keep the password
    sign-in, and nobody signs up with a password."""

    def is_open_for_signup(self, request) -> bool:
        return False

    def add_message(self, *args, **kwargs) -> None:
        """No "Successfully signed in as ..." note: the password sign-in shows none either."""

    def respond_user_inactive(self, request, user):
        return back_to_login(
            request,
            message="This account is switched off; ask an admin if you need it back.",
            summary="Refused: the account is switched off",
            who=user.get_username(),
        )


class SocialAccountAdapter(DefaultSocialAccountAdapter):
    """A first sign-in through a provider makes the account (the provider's e-mail domains
    allowing), or links the one that has the same address when the provider vouches for it;
    every sign-in joins the projects the person's groups give."""

    def list_apps(self, request, provider=None, client_id=None):
        """Only the providers of OIDC_PROVIDERS: apps an admin might add in the database would
        bypass its checks, and show their secrets there."""
        apps = super().list_apps(request, provider=provider, client_id=client_id)
        return [app for app in apps if app.pk is None]

    def is_open_for_signup(self, request, sociallogin) -> bool:
        return True

    def populate_user(self, request, sociallogin, data):
        """The username from preferred_username, else from the e-mail address; made unique
        (alice, then alice and a number) when the name is taken."""
        user = super().populate_user(request, sociallogin, data)
        wanted = user_username(user) or (user_email(user) or "").split("@")[0]
        user_username(user, get_account_adapter().generate_unique_username([wanted, "user"]))
        return user

    def pre_social_login(self, request, sociallogin) -> None:
        app = sociallogin.provider.app
        claims = claims_of(sociallogin)
        email = verified_email(claims)
        who = email or claims.get("email") or claims.get("preferred_username") or ""
        next_url = sociallogin.state.get("next") or ""
        allowed = app.settings.get("allowed_domains") or []
        domain = email.rpartition("@")[2].lower()
        if allowed and domain not in allowed:
            refused = f"e-mail domain {domain} is not allowed" if email else "no verified e-mail"
            raise ImmediateHttpResponse(back_to_login(
                request, who=who, next_url=next_url, summary=f"Refused by {app.name}: {refused}",
                message=f"{app.name} did not give a verified e-mail address at "
                f"{' or '.join(allowed)}, which accounts here need. Ask an admin if you need one.",
            ))  # fmt: skip
        if not sociallogin.is_existing:
            existing = self._account_to_link(request, sociallogin, claims, email, next_url)
            if existing is not None:
                sociallogin.connect(request, existing)
        if sociallogin.is_existing and sociallogin.user.is_active:
            self._join_projects(sociallogin)
        # The activity log's sign-in entry says which provider it was (allauth signs people
        # in with the first backend, the same as a password's).
        request.signed_in_through = app.name

    def _account_to_link(self, request, sociallogin, claims, email, next_url):
        """The account with the person's e-mail address, if one has it: linked when the
        provider vouches for the address and it is the only one; otherwise a refusal, since a
        second account with the same address would be a stranger's way into the first."""
        address = email or claims.get("email")
        if not isinstance(address, str) or not address.strip():
            return None
        accounts = list(get_user_model().objects.filter(email__iexact=address.strip())[:2])
        name = sociallogin.provider.app.name
        problem = ""
        if len(accounts) > 1:
            problem = "more than one account has the address"
        elif accounts and not email:
            problem = "the provider did not confirm the address, which an account has"
        elif accounts and not accounts[0].is_active:
            problem = "the account with the address is switched off"
        if problem:
            raise ImmediateHttpResponse(back_to_login(
                request, who=address, next_url=next_url, summary=f"Refused by {name}: {problem}",
                message=f"Could not sign you in with {name}: {problem} ({address}). Ask an "
                "admin to sort it out.",
            ))  # fmt: skip
        return accounts[0] if accounts else None

    def _join_projects(self, sociallogin) -> None:
        app = sociallogin.provider.app
        joins = app.settings.get("groups") or {}
        if joins:
            claim = app.settings.get("groups_claim", "groups")
            memberships_join_from_groups(
                user=sociallogin.user, groups=groups_of(claims_of(sociallogin), claim),
                joins=joins, provider_name=app.name,
            )  # fmt: skip

    def save_user(self, request, sociallogin, form=None):
        user = super().save_user(request, sociallogin, form=form)
        self._join_projects(sociallogin)
        return user

    def on_authentication_error(self, request, provider, error=None, exception=None,
                                extra_context=None) -> None:  # fmt: skip
        """Back to the login page with what went wrong, never allauth's own error page: the
        provider answered an error, refused the code, or could not be reached on the way."""
        state = (extra_context or {}).get("state") or {}
        failure = type(exception).__name__ if exception else error or "an error"
        if error == AuthError.CANCELLED:
            message = f"Signing in with {provider.name} was cancelled."
        else:
            # The kind of failure only: an exception's text may hold the provider's whole
            # answer, tokens and all.
            logger.warning("Sign-in through %s failed: %s", provider.name, failure)
            message = f"Could not sign you in with {provider.name}; try again{or_the_password()}."
        raise ImmediateHttpResponse(back_to_login(
            request, message=message, next_url=state.get("next") or "",
            summary=f"Refused by {provider.name}: {failure}",
        ))  # fmt: skip
