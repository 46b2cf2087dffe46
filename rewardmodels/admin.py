from django.contrib import admin

from rewardmodels.models import RewardModel, TrainingRun


@admin.register(TrainingRun)
class TrainingRunAdmin(admin.ModelAdmin):
    list_display = ["id", "dataset", "base_model", "method", "status", "step", "total_steps"]
    list_filter = ["status", "method"]
    readonly_fields = ["status", "step", "total_steps", "metrics", "final_metrics", "log_tail"]


@admin.register(RewardModel)
class RewardModelAdmin(admin.ModelAdmin):
    list_display = ["identifier", "dataset", "base_model", "created_at"]
