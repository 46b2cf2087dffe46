"""Forms that launch work: a training run from a dataset version's page, an evaluation and
a filter run from a reward model's page."""

from django import forms
from django.core.exceptions import ValidationError

from annotation.models import CuratedDataset, Round
from annotation.pairs.readers import FORMATS, FileRejected
from rewardmodels.audits import PROBE_DESCRIPTIONS
from rewardmodels.formats import RowsRejected
from rewardmodels.models import FilterRun, TrainingRun


class ServiceErrors:
    """Show a service's refusal on the form that asked for it."""

    file_field = ""  # where a bad file's message goes

    def add_service_error(self, exc: ValidationError | RowsRejected | FileRejected) -> None:
        """Put each message next to its field, or at the top when it names none of ours."""
        if isinstance(exc, RowsRejected):
            self.add_error(self.file_field or None, str(exc))
        elif isinstance(exc, FileRejected):
            self.add_error(self.file_field or None, f"Nothing was accepted: {exc}")
        elif hasattr(exc, "error_dict"):
            for field, errors in exc.message_dict.items():
                self.add_error(field if field in self.fields else None, errors)
        else:
            self.add_error(None, exc.messages)


TRAINING_BASIC = ["base_model", "method", "learning_rate", "batch_size", "epochs", "max_pairs"]


class TrainingRunForm(ServiceErrors, forms.ModelForm):
    """Every training setting (TrainingRun.SETTINGS), with its default, limits and help text
    from the model; the service checks the rest. The basic ones show, the rest fold away."""

    advanced = [name for name in TrainingRun.SETTINGS if name not in TRAINING_BASIC]

    class Meta:
        model = TrainingRun
        fields = list(TrainingRun.SETTINGS)
        labels = {
            "lora_rank": "LoRA rank",
            "lora_alpha": "LoRA alpha",
            "lora_dropout": "LoRA dropout",
            "lora_target_modules": "LoRA target modules",
        }

    @classmethod
    def label_of(cls, name: str) -> str:
        """A setting's name as the form shows it, for the pages that list settings."""
        return cls.Meta.labels.get(name) or TrainingRun._meta.get_field(name).verbose_name

    def basic_fields(self):
        return [self[name] for name in TRAINING_BASIC]

    def advanced_fields(self):
        return [self[name] for name in self.advanced]

    def advanced_has_errors(self) -> bool:
        return any(name in self.errors for name in self.advanced)


FORMAT_CHOICES = [
    (name, "detect from the extension" if name == "auto" else name) for name in FORMATS
]


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
