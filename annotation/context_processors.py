"""What every page's navigation needs to know about the person looking at it."""

from django.utils.functional import SimpleLazyObject

from annotation.access import user_is_admin
from annotation.models import Membership


def navigation(request) -> dict:
    """`reviews_models`: admins and leads see the training runs and models links. Lazy: a
    page that never asks makes no query."""

    def reviews_models() -> bool:
        user = request.user
        if not user.is_authenticated:
            return False
        if user_is_admin(user):
            return True
        return Membership.objects.filter(user=user, role=Membership.Role.LEAD).exists()

    return {"reviews_models": SimpleLazyObject(reviews_models)}
