"""The forms of judges, a project's judging settings and a judging job."""

from django import forms

from annotation.models import Judge, JudgingJob, Project


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
