from django.apps import AppConfig


class RewardModelsConfig(AppConfig):
    name = "rewardmodels"
    verbose_name = "Reward models"
