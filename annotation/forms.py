"""Forms of the app's pages: a project's settings and members, the pairs table's filters, a
judge, a project's judging settings, a judging job."""

from datetime import timedelta
from urllib.parse import urlencode

from django import forms
from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator

from annotation.models import Judge, JudgingJob, Membership, PairConsensus, Project
from annotation.pair_filters import PAIR_SORTS, PairFilters


def add_service_errors(form: forms.BaseForm, exc: ValidationError) -> None:
    """Show a service's ValidationError on the form: by field where it names one."""
    for field, errors in getattr(exc, "message_dict", {"__all__": exc.messages}).items():
        form.add_error(field if field in form.fields else None, errors)


class JudgeForm(forms.ModelForm):
    """A judge's settings; the key is write-only: left empty, a stored key stays."""

    api_key = forms.CharField(
        required=False, strip=True, label="API key",
        widget=forms.PasswordInput(render_value=False, attrs={"autocomplete": "off"}),
        help_text="Stored encrypted and never shown again; leave empty to keep the stored "
        "key (changing the base URL or provider removes it: enter it again then), or name an "
        "environment variable of the workers instead.",
    )  # fmt: skip

    class Meta:
        model = Judge
        fields = [
            "name", "provider", "base_url", "model", "api_key_env", "temperature", "max_tokens",
            "concurrency", "requests_per_minute", "timeout_seconds", "input_price",
            "output_price",
        ]  # fmt: skip
        labels = {"base_url": "Base URL", "api_key_env": "API key variable"}


class JudgeChoiceForm(forms.Form):
    """The judge the preview's request goes to (a bad id is a form error, not a crash)."""

    judge = forms.ModelChoiceField(queryset=Judge.objects.all())


class JudgeSettingsForm(forms.ModelForm):
    class Meta:
        model = Project
        fields = ["judge_template", "judge_on_flip"]
        labels = {
            "judge_template": "Request template",
            "judge_on_flip": "A verdict that changes with the order becomes",
        }
        widgets = {"judge_template": forms.Textarea(attrs={"rows": 14, "class": "mono"})}


class JudgingJobForm(forms.ModelForm):
    class Meta:
        model = JudgingJob
        fields = ["judge", "pairs", "limit"]


# The settings page's sections, in order; each names the fields it shows.
PROJECT_SECTIONS = (
    ("Guidelines and criteria", ("name", "guidelines", "criteria", "judge_criteria")),
    (
        "Labelling",
        (
            "annotators_per_pair", "allow_ties", "ask_strength", "assignment_timeout",
            "gold_rate", "repeat_rate", "fast_label_seconds",
        ),
    ),
    (
        "Agreement and difficulty",
        ("healthy_agreement", "easy_min_strength", "hard_below_agreement", "hard_below_strength"),
    ),
    (
        "Retraining",
        (
            "held_out_share", "promotion_tolerance", "audit_flip_tolerance", "drift_warning",
            "retrain_dataset", "retrain_after_labels",
        ),
    ),
)  # fmt: skip

# Bounds the model leaves open: shares are 0-1, strengths on the 0-3 scale.
_BOUNDS = {
    "healthy_agreement": (0.0, 1.0),
    "hard_below_agreement": (0.0, 1.0),
    "easy_min_strength": (0.0, 3.0),
    "hard_below_strength": (0.0, 3.0),
    "gold_rate": (0.0, 1.0),
    "repeat_rate": (0.0, 1.0),
    "held_out_share": (0.0, 0.9),
    "promotion_tolerance": (0.0, 1.0),
    "audit_flip_tolerance": (0.0, 1.0),
    "drift_warning": (0.0, 1.0),
    "fast_label_seconds": (0.0, 600.0),
}


class ProjectSettingsForm(forms.ModelForm):
    """Everything a lead sets on a project, in the sections of PROJECT_SECTIONS; the
    assignment timeout in minutes."""

    assignment_timeout = forms.FloatField(
        label="Assignment timeout (minutes)",
        min_value=0.5,
        max_value=7 * 24 * 60,
        help_text="An unanswered assignment goes back to the pool after this long.",
        widget=forms.NumberInput(attrs={"step": "any"}),
    )

    class Meta:
        model = Project
        fields = [name for _, names in PROJECT_SECTIONS for name in names]
        labels = {
            "annotators_per_pair": "Annotators per pair (k)",
            "allow_ties": "Allow ties",
            "ask_strength": "Ask how much better",
            "judge_criteria": "Judge-only criteria",
            "fast_label_seconds": "Flag annotators faster than (seconds per label)",
        }
        widgets = {
            "guidelines": forms.Textarea(attrs={"rows": 10, "data-preview": "markdown"}),
            "criteria": forms.Textarea(attrs={"rows": 4, "data-preview": "lines"}),
            "judge_criteria": forms.Textarea(attrs={"rows": 3, "data-preview": "lines"}),
        }
        help_texts = {
            "guidelines": "Shown to annotators above the pairs, in Markdown; the preview "
            "below shows it as they will see it.",
        }

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if not self.is_bound:  # a new project shows the model's default
            minutes = self.instance.assignment_timeout.total_seconds() / 60
            self.initial["assignment_timeout"] = int(minutes) if minutes.is_integer() else minutes
        for name, (low, high) in _BOUNDS.items():
            field = self.fields[name]
            field.validators += [MinValueValidator(low), MaxValueValidator(high)]
            # Any step: 2/3, the default "hard below" agreement, is on no decimal grid.
            field.widget.attrs.update(min=low, max=high, step="any")

    def sections(self):
        """(title, bound fields) for each section, for the template."""
        return [(title, [self[name] for name in names]) for title, names in PROJECT_SECTIONS]

    def clean_assignment_timeout(self) -> timedelta:
        return timedelta(minutes=self.cleaned_data["assignment_timeout"])

    def clean(self):
        data = super().clean()
        easy, hard = data.get("easy_min_strength"), data.get("hard_below_strength")
        if easy is not None and hard is not None and easy < hard:
            self.add_error(
                "easy_min_strength",
                "Easy pairs need at least the strength below which a pair is hard.",
            )
        return data


class MemberForm(forms.Form):
    """Adds someone with an account to a project, by user name or e-mail address."""

    user = forms.CharField(
        label="User name or e-mail", max_length=254, strip=True,
        help_text="Someone who has an account already.",
    )  # fmt: skip
    role = forms.ChoiceField(choices=Membership.Role.choices, initial=Membership.Role.ANNOTATOR)


class PairFilterForm(forms.Form):
    """The pairs table's search, filters and sort, read from the query string (the page and
    the API read the same parameters)."""

    q = forms.CharField(required=False, max_length=500, strip=True, label="Search")
    source = forms.CharField(required=False, max_length=200)
    external_id = forms.CharField(required=False, max_length=255)
    # Read as typed (true/false, 1/0): the select widget of NullBooleanField has its own codes.
    labelled = forms.NullBooleanField(required=False, widget=forms.TextInput)
    difficulty = forms.MultipleChoiceField(required=False, choices=PairConsensus.Difficulty.choices)
    contested = forms.NullBooleanField(required=False, widget=forms.TextInput)
    gold = forms.NullBooleanField(required=False, widget=forms.TextInput)
    decided = forms.NullBooleanField(required=False, widget=forms.TextInput)
    sort = forms.ChoiceField(
        required=False, choices=[(name, label) for name, (label, _) in PAIR_SORTS.items()]
    )

    def filters(self) -> PairFilters:
        data = self.cleaned_data
        return PairFilters(
            search=data["q"], source=data["source"] or None, external_id=data["external_id"],
            labelled=data["labelled"], difficulty=tuple(data["difficulty"]),
            contested=data["contested"], gold=data["gold"], decided=data["decided"],
            sort=data["sort"] or "id",
        )  # fmt: skip

    def query(self) -> str:
        """The valid, non-empty parameters as a query string, carried into page links and
        review pages so that they keep to the same pairs."""
        if not self.is_valid():
            return ""
        pairs = []
        for name, value in self.cleaned_data.items():
            for item in value if isinstance(value, list) else [value]:
                if item not in (None, ""):
                    pairs.append((name, str(item).lower() if isinstance(item, bool) else item))
        return urlencode(pairs)
