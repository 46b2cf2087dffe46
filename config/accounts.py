"""Password resets: by mail where the site can send it (EMAIL_URL), otherwise by an admin."""

from django.conf import settings
from django.contrib.auth.views import PasswordResetView
from django.shortcuts import render


class PasswordReset(PasswordResetView):
    """Django's reset by mail; with no mail set up, a page that says who resets passwords
    instead of one that says a mail is on its way."""

    def dispatch(self, request, *args, **kwargs):
        if not settings.PASSWORD_RESET_BY_MAIL:
            return render(request, "registration/password_reset_by_admin.html")
        return super().dispatch(request, *args, **kwargs)
