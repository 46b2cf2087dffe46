"""The metrics' mean_margin (the mean of r_chosen - r_rejected) is named mean_reward_gap, so
that "margin" names only how clearly people preferred a response; a retraining's decision
keeps the models' accuracies under "metrics", as everything else does, not "figures"."""

from django.db import migrations

STORED = {
    "TrainingRun": ("metrics", "final_metrics"),
    "EvaluationRun": ("metrics",),
    "Audit": ("results",),
    "Promotion": ("audit_figures",),
    "Retraining": ("decision",),
}


def renamed(value, old: str, new: str):
    if isinstance(value, dict):
        return {
            (new if key == old else key): renamed(item, old, new) for key, item in value.items()
        }
    if isinstance(value, list):
        return [renamed(item, old, new) for item in value]
    return value


def rename_key(apps, old: str, new: str) -> None:
    for model_name, fields in STORED.items():
        model = apps.get_model("rewardmodels", model_name)
        for row in model.objects.only(*fields).iterator():
            values = {name: renamed(getattr(row, name), old, new) for name in fields}
            if any(values[name] != getattr(row, name) for name in fields):
                model.objects.filter(pk=row.pk).update(**values)


def rename_decisions(apps, old: str, new: str) -> None:
    retraining = apps.get_model("rewardmodels", "Retraining")
    for row in retraining.objects.filter(decision__has_key=old).only("decision"):
        decision = {(new if key == old else key): value for key, value in row.decision.items()}
        retraining.objects.filter(pk=row.pk).update(decision=decision)


def forwards(apps, schema_editor) -> None:
    rename_key(apps, "mean_margin", "mean_reward_gap")
    rename_decisions(apps, "figures", "metrics")


def backwards(apps, schema_editor) -> None:
    rename_key(apps, "mean_reward_gap", "mean_margin")
    rename_decisions(apps, "metrics", "figures")


class Migration(migrations.Migration):
    dependencies = [("rewardmodels", "0017_training_settings_from_the_trainer")]

    operations = [migrations.RunPython(forwards, backwards)]
