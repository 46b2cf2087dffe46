"""Training runs count their deliveries (TRAINING_MAX_DELIVERIES); filter runs' "per_token"
normalisation (reward / tokens, which ranks a longer answer first among negative rewards)
becomes "length" (reward with the model's length trend removed)."""

from django.db import migrations, models


def per_token_to_length(apps, schema_editor):
    FilterRun = apps.get_model("rewardmodels", "FilterRun")
    FilterRun.objects.filter(normalize="per_token").update(normalize="length")


def length_to_per_token(apps, schema_editor):
    FilterRun = apps.get_model("rewardmodels", "FilterRun")
    FilterRun.objects.filter(normalize="length").update(normalize="per_token")


class Migration(migrations.Migration):
    dependencies = [
        ("rewardmodels", "0002_evaluations_and_filters"),
    ]

    operations = [
        migrations.AddField(
            model_name="trainingrun",
            name="deliveries",
            field=models.PositiveIntegerField(
                default=0,
                help_text="Times a worker has started on the run; past TRAINING_MAX_DELIVERIES "
                "without finishing (its worker killed each time) it is marked failed.",
            ),
        ),
        migrations.AlterField(
            model_name="filterrun",
            name="normalize",
            field=models.CharField(
                choices=[
                    ("none", "Raw reward"),
                    ("length", "Reward with the model's length trend removed"),
                ],
                default="none",
                max_length=10,
            ),
        ),
        migrations.RunPython(per_token_to_length, length_to_per_token, elidable=True),
    ]
