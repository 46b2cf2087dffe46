"""The test provider's URLs and what it says about people: loaded by tests/accounts/provider.py
in its own process, once django-oauth-toolkit's settings are in place."""

from django.contrib.auth.views import LoginView
from django.urls import include, path
from oauth2_provider.oauth2_validators import OAuth2Validator

from tests.accounts.provider import PEOPLE


class Validator(OAuth2Validator):
    """Claims for the ID token and user info: the standard ones, and the person's groups."""

    oidc_claim_scope = {**OAuth2Validator.oidc_claim_scope, "groups": "profile"}

    def get_additional_claims(self, request):
        claims = PEOPLE[request.user.username]
        return {"preferred_username": request.user.username, "name": request.user.username.title(),
                **claims}  # fmt: skip


urlpatterns = [
    path("accounts/login/", LoginView.as_view(), name="login"),
    path("o/", include("oauth2_provider.urls", namespace="oauth2_provider")),
]
