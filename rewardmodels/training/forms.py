"""The training form: every setting of a run, the basic ones first."""

from django import forms

from rewardmodels.models import TrainingRun
from rewardmodels.pages import ServiceErrors

TRAINING_BASIC = ["base_model", "method", "learning_rate", "batch_size", "epochs", "max_pairs"]


class TrainingRunForm(ServiceErrors, forms.ModelForm):
    """Every training setting (TrainingRun.SETTINGS), with its default, limits and help text
    from the model; the service checks the rest. The basic ones show, the rest fold away."""

    advanced = [name for name in TrainingRun.SETTINGS if name not in TRAINING_BASIC]

    class Meta:
        model = TrainingRun
        fields = list(TrainingRun.SETTINGS)

    @staticmethod
    def label_of(name: str) -> str:
        """A setting's name as the form shows it, for the pages that list settings."""
        return TrainingRun._meta.get_field(name).verbose_name

    def basic_fields(self):
        return [self[name] for name in TRAINING_BASIC]

    def advanced_fields(self):
        return [self[name] for name in self.advanced]

    def advanced_has_errors(self) -> bool:
        return any(name in self.errors for name in self.advanced)
