"""Sign-ins, sign-outs and failed sign-ins, from Django's own signals: every way in (the
password form, single sign-on, the admin) sends them."""

from django.contrib.auth.signals import user_logged_in, user_logged_out, user_login_failed

from annotation.activity.log import Kind, record


def signed_in(sender, request, user, **kwargs) -> None:
    through = getattr(request, "signed_in_through", "")  # set by single sign-on
    record(Kind.SIGNED_IN, actor=user,
           summary=f"With single sign-on ({through})" if through else "With password")  # fmt: skip


def signed_out(sender, request, user, **kwargs) -> None:
    if user is not None:
        record(Kind.SIGNED_OUT, actor=user)


def sign_in_failed(sender, credentials, request=None, **kwargs) -> None:
    """Only the name tried is kept: Django has already masked the password in `credentials`,
    and nothing but the username is read from it."""
    name = str(credentials.get("username") or "")[:150]
    record(Kind.SIGN_IN_FAILED, actor_name=name, summary="Wrong name or password")


def connect() -> None:
    user_logged_in.connect(signed_in, dispatch_uid="activity-signed-in")
    user_logged_out.connect(signed_out, dispatch_uid="activity-signed-out")
    user_login_failed.connect(sign_in_failed, dispatch_uid="activity-sign-in-failed")
