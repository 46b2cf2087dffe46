"""The forms of a project's settings and members."""

from datetime import timedelta

from django import forms
from django.core.validators import MaxValueValidator, MinValueValidator

from annotation.models import Membership, Project

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
        (
            "consensus_rule", "healthy_agreement", "min_reliability", "easy_min_strength",
            "hard_below_agreement", "hard_below_strength",
        ),
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
    "min_reliability": (0.0, 1.0),
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


SHOWN_DECIMALS = 3


def shown(value: float) -> str:
    """A setting as its field shows it: 0.667 for 2/3, 0.05 for 0.05, 2 for 2.0."""
    return f"{value:.{SHOWN_DECIMALS}f}".rstrip("0").rstrip(".")


class RoundedNumberInput(forms.NumberInput):
    """A number field that shows a stored figure rounded, as a person reads it."""

    def format_value(self, value):
        return shown(value) if isinstance(value, float) else super().format_value(value)


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
            "min_reliability": "Flag raters less reliable than",
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
            field.widget = RoundedNumberInput(attrs={**field.widget.attrs, "step": "any"})
            field.widget.attrs.update(min=low, max=high)

    def sections(self):
        """(title, bound fields) for each section, for the template."""
        return [(title, [self[name] for name in names]) for title, names in PROJECT_SECTIONS]

    def clean_assignment_timeout(self) -> timedelta:
        return timedelta(minutes=self.cleaned_data["assignment_timeout"])

    def clean(self):
        data = super().clean()
        for name in _BOUNDS:
            # A figure sent back as it was shown (0.667) keeps its stored value (2/3).
            stored, sent = getattr(self.instance, name), self.data.get(self.add_prefix(name))
            if isinstance(stored, float) and name in data and str(sent).strip() == shown(stored):
                data[name] = stored
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
