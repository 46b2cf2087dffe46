"""Django's password check, which PASSWORD_LOGIN=0 turns off."""

from django.conf import settings
from django.contrib.auth.backends import ModelBackend


class PasswordBackend(ModelBackend):
    """Django's user name and password check, off with PASSWORD_LOGIN=0, so that the admin's
    login page refuses passwords too. `manage.py changepassword` and `createsuperuser` still
    work, and a password set there serves again once PASSWORD_LOGIN is back on."""

    def authenticate(self, request, username=None, password=None, **kwargs):
        if not settings.PASSWORD_LOGIN:
            return None
        return super().authenticate(request, username=username, password=password, **kwargs)
