"""Signing in through a real OpenID Connect provider (django-oauth-toolkit, in a process of its
own on 127.0.0.1), the whole way: the button, the provider's sign-in page, the code sent back,
the token and user info fetched from the provider, and the account that comes of it."""

import logging
import socket

import pytest
from allauth.socialaccount.models import SocialAccount
from django.contrib.auth import get_user_model

from annotation.models import ActivityEntry, Membership
from tests.accounts.conftest import providers_json, sign_in_with_corp, use_providers
from tests.factories import PASSWORD, MembershipFactory, ProjectFactory, UserFactory

User = get_user_model()


def signed_in_as(client) -> str | None:
    """The username the client's session belongs to, or None."""
    user_id = client.session.get("_auth_user_id")
    return User.objects.get(pk=user_id).username if user_id else None


def refusals() -> list[tuple[str, str]]:
    entries = ActivityEntry.objects.filter(kind=ActivityEntry.Kind.SIGN_IN_FAILED)
    return list(entries.values_list("actor_name", "summary"))


def test_the_login_page_offers_the_provider_beside_the_password_form(client, db, corp):
    page = client.get("/accounts/login/")
    html = page.content.decode()
    assert "Sign in with Corp SSO" in html and 'action="/accounts/oidc/corp/login/"' in html
    assert 'id="password-login"' in html and 'name="password"' in html
    # The button's answer redirects to the provider: the browser checks that against form-action.
    assert "form-action 'self' http://127.0.0.1:" in page.headers["Content-Security-Policy"]
    # Opened by a link instead of the button: a page of ours that asks to go on, by POST.
    asked = client.get("/accounts/oidc/corp/login/").content.decode()
    assert "<h1>Sign in with Corp SSO</h1>" in asked and "· Prefhub</title>" in asked


def test_a_first_sign_in_makes_the_account(client, db, corp, oidc_provider):
    landed = sign_in_with_corp(client, "alice", oidc_provider.issuer)
    assert landed.status_code == 200 and landed.request["PATH_INFO"] == "/"
    assert signed_in_as(client) == "alice"
    alice = User.objects.get(username="alice")
    assert alice.email == "alice@example.org" and not alice.has_usable_password()
    assert SocialAccount.objects.get(user=alice).provider == "corp"
    signed_in = ActivityEntry.objects.get(kind=ActivityEntry.Kind.SIGNED_IN)
    assert signed_in.summary == "With single sign-on (Corp SSO)"

    client.logout()
    sign_in_with_corp(client, "alice", oidc_provider.issuer)  # the second time: the same account
    assert signed_in_as(client) == "alice" and User.objects.count() == 1


def test_a_taken_username_gets_a_number(client, db, corp, oidc_provider):
    UserFactory(username="alice", email="someone.else@example.org")
    sign_in_with_corp(client, "alice", oidc_provider.issuer)
    username = signed_in_as(client)
    assert username.startswith("alice") and username[5:].isdigit()
    assert User.objects.get(username=username).email == "alice@example.org"


def test_an_account_with_the_verified_address_is_linked_not_duplicated(
    client, db, corp, oidc_provider
):
    robert = UserFactory(username="robert", email="bob@example.org")
    landed = sign_in_with_corp(client, "bob", oidc_provider.issuer, next_url="/labels/")
    assert signed_in_as(client) == "robert" and landed.request["PATH_INFO"] == "/labels/"
    assert User.objects.count() == 1
    assert SocialAccount.objects.get(provider="corp").user == robert
    robert.refresh_from_db()
    assert robert.check_password(PASSWORD)  # linking leaves the password as it was
    client.logout()
    client.post("/accounts/login/", {"username": "robert", "password": PASSWORD})
    assert signed_in_as(client) == "robert"


def test_a_switched_off_account_is_neither_linked_nor_signed_in(client, db, corp, oidc_provider):
    robert = UserFactory(username="robert", email="bob@example.org", is_active=False)
    landed = sign_in_with_corp(client, "bob", oidc_provider.issuer)
    assert "the account with the address is switched off" in landed.content.decode()
    assert signed_in_as(client) is None and not SocialAccount.objects.exists()

    robert.is_active = True
    robert.save()
    sign_in_with_corp(client, "bob", oidc_provider.issuer)  # linked now
    client.logout()
    User.objects.filter(pk=robert.pk).update(is_active=False)
    landed = sign_in_with_corp(client, "bob", oidc_provider.issuer)
    assert landed.request["PATH_INFO"] == "/accounts/login/"
    assert "This account is switched off" in landed.content.decode()
    assert signed_in_as(client) is None


def test_the_admin_shows_no_providers_kept_in_the_database(client, db, corp):
    admin = UserFactory(username="root", is_staff=True, is_superuser=True)
    client.force_login(admin)
    index = client.get("/admin/").content.decode()
    assert "Social accounts" in index
    assert "Social applications" not in index and "Social application tokens" not in index


def test_an_address_the_provider_does_not_vouch_for_links_nothing(client, db, corp, oidc_provider):
    UserFactory(username="carol", email="carol@example.org")
    landed = sign_in_with_corp(client, "carol", oidc_provider.issuer)
    assert signed_in_as(client) is None and User.objects.count() == 1
    assert not SocialAccount.objects.exists()
    assert "did not confirm the address" in landed.content.decode()
    assert landed.request["PATH_INFO"] == "/accounts/login/"


def test_an_address_outside_the_allowed_domains_is_refused(client, db, corp, oidc_provider):
    corp(allowed_domains=["Example.org"])
    landed = sign_in_with_corp(client, "mallory", oidc_provider.issuer)
    html = landed.content.decode()
    assert landed.request["PATH_INFO"] == "/accounts/login/"
    assert "did not give a verified e-mail address at example.org" in html
    assert 'name="password"' in html
    assert signed_in_as(client) is None and not User.objects.exists()
    assert refusals() == [
        ("mallory@elsewhere.net", "Refused by Corp SSO: e-mail domain elsewhere.net is not allowed")
    ]
    sign_in_with_corp(client, "alice", oidc_provider.issuer)  # an allowed domain
    assert signed_in_as(client) == "alice"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.mark.parametrize("answer", ["ConnectionError", "HTTPError"])
def test_a_provider_that_is_down_gets_a_clear_message_and_the_password_still_works(
    client, db, settings, oidc_provider, answer
):
    # Nothing listening on the port; or a server there that has no such provider (a 404).
    issuer = (
        f"http://127.0.0.1:{free_port()}/o"
        if answer == "ConnectionError"
        else f"{oidc_provider.issuer}/gone"
    )
    down = type(oidc_provider)(issuer=issuer)
    use_providers(settings, providers_json(down))
    UserFactory(username="ann")
    landed = sign_in_with_corp(client, "alice", down.issuer)
    html = landed.content.decode()
    assert landed.request["PATH_INFO"] == "/accounts/login/"
    assert (
        "Could not reach Corp SSO to sign you in; try again, or sign in with your password." in html
    )
    assert 'name="password"' in html and down.secret not in html
    assert refusals() == [("", f"Could not reach Corp SSO: {answer}")]

    signed = client.post("/accounts/login/", {"username": "ann", "password": PASSWORD})
    assert signed.status_code == 302 and signed_in_as(client) == "ann"


def test_an_answer_from_the_provider_that_matches_no_sign_in_is_refused(client, db, corp):
    landed = client.get(
        "/accounts/oidc/corp/login/callback/?code=stolen&state=not-ours", follow=True
    )
    assert landed.request["PATH_INFO"] == "/accounts/login/"
    assert "Could not sign you in with Corp SSO; try again" in landed.content.decode()
    assert signed_in_as(client) is None and not User.objects.exists()


def test_groups_join_projects_and_never_lower_a_role(client, db, corp, oidc_provider, caplog):
    helpfulness, harmlessness = ProjectFactory(name="Helpfulness"), ProjectFactory(name="Harm")
    robert = UserFactory(username="robert", email="bob@example.org")
    MembershipFactory(user=robert, project=harmlessness, role=Membership.Role.LEAD)
    labellers = [{"project": name, "role": "annotator"} for name in ("Helpfulness", "Harm")]
    leads = [{"project": "Helpfulness", "role": "lead"}, {"project": "Gone", "role": "lead"}]
    corp(groups={"labellers": labellers, "leads": leads})

    with caplog.at_level(logging.WARNING, logger="annotation.accounts.sso"):
        sign_in_with_corp(client, "alice", oidc_provider.issuer)  # labellers
        client.logout()
        sign_in_with_corp(client, "bob", oidc_provider.issuer)  # labellers and leads
    roles = set(Membership.objects.values_list("user__username", "project__name", "role"))
    assert roles == {
        ("alice", "Helpfulness", "annotator"), ("alice", "Harm", "annotator"),
        ("robert", "Helpfulness", "lead"), ("robert", "Harm", "lead"),
    }  # fmt: skip
    assert "a group joins project 'Gone', which does not exist" in caplog.text
    assert helpfulness.memberships.count() == 2


def test_with_password_login_off_only_the_buttons_remain(client, db, settings, corp):
    settings.PASSWORD_LOGIN = False
    UserFactory(username="ann")
    page = client.get("/accounts/login/").content.decode()
    assert "Sign in with Corp SSO" in page and 'name="password"' not in page
    refused = client.post("/accounts/login/", {"username": "ann", "password": PASSWORD})
    assert refused.status_code == 403 and signed_in_as(client) is None
    assert "Signing in with a password is turned off here" in refused.content.decode()
    # The admin's login page takes no password either.
    admin = UserFactory(username="root", is_staff=True, is_superuser=True)
    client.post("/admin/login/", {"username": admin.username, "password": PASSWORD})
    assert signed_in_as(client) is None


@pytest.mark.parametrize(
    "path", ["/accounts/signup/", "/accounts/3rdparty/signup/", "/accounts/password/reset/",
             "/accounts/email/", "/accounts/3rdparty/"],
)  # fmt: skip
def test_no_page_of_allauth_signs_anyone_up(client, db, corp, path):
    assert client.get(path).status_code == 404
    assert client.post(path, {"username": "x", "email": "x@example.org"}).status_code == 404
