"""The forms that launch an evaluation or an audit from a model's page, and the filters of
an evaluation's wrong pairs on its page."""

from urllib.parse import urlencode

from django import forms
from django.core.exceptions import ValidationError

from annotation.agreement.maths import DIFFICULTIES
from annotation.models import CuratedDataset, Round
from rewardmodels.evaluation.audits import PROBE_DESCRIPTIONS
from rewardmodels.pages import FORMAT_CHOICES, ServiceErrors


class EvaluationForm(ServiceErrors, forms.Form):
    """Evaluate on a version's test split (of the model's project) or on an uploaded file."""

    file_field = "pairs"

    dataset = forms.ModelChoiceField(
        queryset=CuratedDataset.objects.none(),
        to_field_name="identifier",
        required=False,
        empty_label="— an uploaded file (below) —",
        label="Dataset version (its test split)",
    )
    pairs = forms.FileField(
        required=False,
        label="or a file of labelled pairs",
        help_text="JSONL, CSV, Parquet or HH-RLHF, with chosen and rejected responses.",
    )
    format = forms.ChoiceField(choices=FORMAT_CHOICES, initial="auto")

    def __init__(self, *args, datasets, **kwargs):
        kwargs.setdefault("auto_id", "evaluate_%s")
        super().__init__(*args, **kwargs)
        self.fields["dataset"].queryset = datasets

    def clean(self):
        data = super().clean()
        if data.get("dataset") and data.get("pairs"):
            raise ValidationError("Choose a dataset version or upload a file, not both.")
        if not data.get("dataset") and not data.get("pairs") and not self.errors:
            raise ValidationError(
                "Choose a dataset version with a test split, or upload a file of labelled pairs."
            )
        return data


PROBE_CHOICES = [(name, f"{name}: {text}") for name, text in PROBE_DESCRIPTIONS.items()]


class AuditForm(ServiceErrors, forms.Form):
    """Audit on a version's test split, a round's held-out set (of the model's project), or
    an uploaded file; promotion counts the first two."""

    file_field = "pairs"

    dataset = forms.ModelChoiceField(
        queryset=CuratedDataset.objects.none(), to_field_name="identifier", required=False,
        empty_label="—", label="Dataset version (its test split)",
    )  # fmt: skip
    round = forms.ModelChoiceField(
        queryset=Round.objects.none(), to_field_name="name", required=False, empty_label="—",
        label="or a round (its fresh held-out pairs)",
    )  # fmt: skip
    pairs = forms.FileField(
        required=False, label="or a file of labelled pairs",
        help_text="JSONL, CSV, Parquet or HH-RLHF, with chosen and rejected responses.",
    )  # fmt: skip
    format = forms.ChoiceField(choices=FORMAT_CHOICES, initial="auto")
    probes = forms.MultipleChoiceField(
        choices=PROBE_CHOICES, initial=[name for name, _ in PROBE_CHOICES],
        widget=forms.CheckboxSelectMultiple, help_text="Each edits every rejected response.",
    )  # fmt: skip

    def __init__(self, *args, datasets, rounds, **kwargs):
        kwargs.setdefault("auto_id", "audit_%s")
        super().__init__(*args, **kwargs)
        self.fields["dataset"].queryset = datasets
        self.fields["round"].queryset = rounds

    def clean(self):
        data = super().clean()
        chosen = [name for name in ("dataset", "round", "pairs") if data.get(name)]
        if len(chosen) > 1:
            raise ValidationError("Choose one: a dataset version, a round or a file.")
        if not chosen and not self.errors:
            raise ValidationError("Choose a dataset version, a round, or upload labelled pairs.")
        return data


UNKNOWN_DIFFICULTY = "unknown"


class WrongPairsForm(forms.Form):
    """Which of an evaluation's wrong pairs its page lists, from the query string."""

    difficulty = forms.ChoiceField(
        required=False,
        choices=[("", "any"), *((name, name) for name in DIFFICULTIES),
                 (UNKNOWN_DIFFICULTY, "not known")],
    )  # fmt: skip
    longer = forms.ChoiceField(
        required=False, label="Chosen response",
        choices=[("", "longer or not"), ("yes", "the longer"), ("no", "not the longer")],
    )  # fmt: skip

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("auto_id", "wrong_%s")
        super().__init__(*args, **kwargs)

    def filters(self) -> dict:
        """The keyword arguments of wrong_pairs_filtered; none for a query that is not valid."""
        if not self.is_valid():
            return {}
        data, filters = self.cleaned_data, {}
        if data["difficulty"]:
            unknown = data["difficulty"] == UNKNOWN_DIFFICULTY
            filters["difficulty"] = None if unknown else data["difficulty"]
        if data["longer"]:
            filters["chosen_longer"] = data["longer"] == "yes"
        return filters

    def query(self) -> str:
        """The filters in force as a query string, for the pager's links."""
        if not self.is_valid():
            return ""
        return urlencode({name: value for name, value in self.cleaned_data.items() if value})
