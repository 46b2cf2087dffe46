"""The training panel on a dataset version's page: the launch form (admins) and its runs."""

from django import template

from annotation.access import user_is_admin
from rewardmodels.training.forms import TrainingRunForm

register = template.Library()


@register.inclusion_tag("rewardmodels/_train_form.html", takes_context=True)
def training_panel(context, dataset):
    """A form the view re-renders with errors comes in the context as `train_form`."""
    user = context["request"].user
    form = context.get("train_form")
    if form is None and user_is_admin(user):
        form = TrainingRunForm()
    return {
        "dataset": dataset,
        "form": form,
        "runs": dataset.runs.defer("metrics", "log_tail", "error")[:10],
        "csrf_token": context.get("csrf_token"),
    }
