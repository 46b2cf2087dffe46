"""An evaluation keeps what the model made of each pair (a file beside its others), which
its page lists the mistakes from; evaluations made before have none."""

from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('rewardmodels', '0018_metrics_names'),
    ]

    operations = [
        migrations.AddField(
            model_name='evaluationrun',
            name='pair_results_file',
            field=models.CharField(blank=True, help_text="Each pair's result as JSONL (workers.ml.scoring.pair_results), the wrong pairs first, most confident mistake first; empty for evaluations made before.", max_length=500),
        ),
    ]
