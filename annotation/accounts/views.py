"""The login page, with a button for each OpenID Connect provider beside the password form,
and the first step of signing in with a provider, which says so when the provider cannot
be reached."""

import logging

from allauth.socialaccount.adapter import get_adapter
from allauth.socialaccount.providers.openid_connect import views as openid_connect
from django.conf import settings
from django.contrib.auth.views import LoginView
from requests import RequestException

from annotation.accounts.sso import back_to_login, or_the_password

logger = logging.getLogger(__name__)


def provider_buttons(request) -> list[dict]:
    """Each provider's id and name, in the order of OIDC_PROVIDERS."""
    apps = get_adapter(request).list_apps(request, provider="openid_connect")
    return [{"id": app.provider_id, "name": app.name} for app in apps]


class SignIn(LoginView):
    """Django's password sign-in (throttled by django-axes), with the providers' buttons; with
    PASSWORD_LOGIN=0 the form is gone and a password posted anyway is refused."""

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        context["providers"] = provider_buttons(self.request)
        context["password_login"] = settings.PASSWORD_LOGIN
        return context

    def post(self, request, *args, **kwargs):
        if not settings.PASSWORD_LOGIN:
            context = self.get_context_data(password_refused=True)
            return self.render_to_response(context, status=403)
        return super().post(request, *args, **kwargs)


def provider_login(request, provider_id: str):
    """allauth's first step (a redirect to the provider's sign-in page, made from its
    discovery document): back to the login page, saying so, when the provider cannot be
    reached or answers with an error instead of that document."""
    try:
        return openid_connect.login(request, provider_id)
    except (RequestException, KeyError) as exc:
        name = next((p["name"] for p in provider_buttons(request) if p["id"] == provider_id), "")
        logger.warning("Could not reach %s (%s) to sign someone in: %s", name, provider_id, exc)
        return back_to_login(
            request,
            message=f"Could not reach {name} to sign you in; try again{or_the_password()}.",
            summary=f"Could not reach {name}: {type(exc).__name__}",
            next_url=request.POST.get("next") or request.GET.get("next") or "",
        )
