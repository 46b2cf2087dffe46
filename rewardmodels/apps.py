from django.apps import AppConfig


class RewardModelsConfig(AppConfig):
    name = "rewardmodels"
    verbose_name = "Reward models"

    def ready(self) -> None:
        from annotation.curation.sections import dataset_section_register
        from rewardmodels.training.views import dataset_training_section

        dataset_section_register(dataset_training_section)
