"""The account page: a person's API tokens, made and revoked there. A new token's secret is
shown once, in the answer to the form that made it: never in the session, a URL or a cache."""

from django import forms
from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.shortcuts import redirect, render
from django.utils import timezone
from django.views.decorators.cache import never_cache

from annotation.access import user_is_admin
from annotation.accounts.tokens import NAME_MAX, create_token, revoke_token, tokens_of
from annotation.errors import add_service_errors
from annotation.models import ApiToken


class TokenForm(forms.Form):
    name = forms.CharField(
        max_length=NAME_MAX,
        help_text="What the token is for, e.g. ci or nightly-import.",
        widget=forms.TextInput(attrs={"autocomplete": "off"}),
    )
    never_expires = forms.BooleanField(
        required=False, label="Never expires", help_text="Admins only: for service accounts."
    )

    def __init__(self, *args, admin: bool, **kwargs):
        super().__init__(*args, **kwargs)
        if not admin:
            del self.fields["never_expires"]


def _page(request, form: TokenForm, *, new=None, status: int = 200):
    context = {
        "tokens": tokens_of(request.user),
        "now": timezone.now(),
        "form": form,
        "days": settings.API_TOKEN_DAYS,
        # (row, secret) of the token just made: shown on this answer only.
        "new": new,
    }
    return render(request, "annotation/account.html", context, status=status)


@never_cache
@login_required
def account(request):
    """GET: the page. POST with action=create: a token, its secret shown on the answer;
    action=revoke with token=<id>: that token revoked, back to the page."""
    admin = user_is_admin(request.user)
    if request.method != "POST":
        return _page(request, TokenForm(admin=admin))
    if request.POST.get("action") == "revoke":
        try:
            row = revoke_token(request.user, request.POST.get("token"))
        except ApiToken.DoesNotExist:
            messages.error(request, "No such token of yours: it may have been revoked already.")
        else:
            messages.success(request, f"Revoked {row.name!r}: it no longer works.")
        return redirect("account")
    form = TokenForm(request.POST, admin=admin)
    if form.is_valid():
        try:
            new = create_token(
                request.user,
                form.cleaned_data["name"],
                expires=not form.cleaned_data.get("never_expires", False),
            )
        except ValidationError as exc:
            add_service_errors(form, exc)
        else:
            return _page(request, TokenForm(admin=admin), new=new)
    return _page(request, form, status=400)
