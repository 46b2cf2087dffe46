"""Reads of the registry: a project's promotions."""

from django.db.models import QuerySet

from rewardmodels.models import Promotion


def promotions(*, project_id: int) -> QuerySet[Promotion]:
    return Promotion.objects.filter(project_id=project_id).select_related(
        "reward_model", "decided_by"
    )
