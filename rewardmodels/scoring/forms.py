"""The form that launches a filter from a model's page."""

from django import forms

from rewardmodels.models import FilterRun
from rewardmodels.pages import FORMAT_CHOICES, ServiceErrors


class FilterForm(ServiceErrors, forms.ModelForm):
    """Score a candidates file and keep the best per prompt; limits come from FilterRun."""

    file_field = "candidates"

    candidates = forms.FileField(
        label="Candidates file",
        help_text="JSONL, CSV or Parquet: a prompt with its 'responses' list, or one "
        "{prompt, response} per row.",
    )
    # HH-RLHF files hold pairs, not candidates to filter.
    format = forms.ChoiceField(
        choices=[(name, label) for name, label in FORMAT_CHOICES if name != "hh"], initial="auto"
    )

    field_order = ["candidates", "format", "keep_top", "threshold", "normalize"]

    class Meta:
        model = FilterRun
        fields = ["keep_top", "threshold", "normalize"]
        labels = {"keep_top": "Keep top share", "normalize": "Normalisation"}
        help_texts = {
            "normalize": "Removing the length trend ranks by reward minus the model's fitted "
            "reward per token times each response's tokens, so a padded long answer does not "
            "win on length alone (raw reward for a model that did not record its trend).",
        }

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("auto_id", "filter_%s")
        kwargs.setdefault("initial", {"keep_top": 0.25})
        super().__init__(*args, **kwargs)
