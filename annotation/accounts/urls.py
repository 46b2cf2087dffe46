"""Single sign-on's URLs, under accounts/: only allauth's OpenID Connect steps, none of its
account pages (Django's own login, logout and password reset stay where they are). The
callback a provider registers is /accounts/oidc/<id>/login/callback/."""

from allauth.socialaccount.providers.openid_connect import views as openid_connect
from django.urls import path
from django.views.generic import RedirectView

from annotation.accounts.views import provider_login

urlpatterns = [
    path("oidc/<str:provider_id>/login/", provider_login, name="openid_connect_login"),
    path(
        "oidc/<str:provider_id>/login/callback/",
        openid_connect.callback,
        name="openid_connect_callback",
    ),
    # Where allauth sends a person whose sign-in cannot go on: our login page.
    path(
        "sso/login/",
        RedirectView.as_view(pattern_name="login", query_string=True),
        name="account_login",
    ),
]
