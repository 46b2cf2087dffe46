"""The training settings are defined once, on the trainer's TrainConfig: a run's columns, its
form and the train command derive from them, with their defaults, limits and help."""

import pytest
from django.core.exceptions import ValidationError
from django.core.management import load_command_class

from rewardmodels.models import TrainingRun
from rewardmodels.training.forms import TrainingRunForm
from workers.ml.config import SETTINGS, TrainConfig


def test_a_new_run_has_the_trainers_defaults():
    defaults = TrainConfig()
    settings = TrainingRun().train_settings()
    assert settings == {name: getattr(defaults, name) for name in settings}
    assert set(settings) == {s.name for s in SETTINGS} | {"init_from"}


def test_a_run_becomes_a_trainer_config_as_it_was_set():
    run = TrainingRun(lora_target_modules=" q_proj, v_proj ,", margin_loss=True, epochs=2.5)
    config = TrainConfig(**run.train_settings())
    assert config.lora_target_modules == ["q_proj", "v_proj"]
    assert config.margin_loss and config.epochs == 2.5


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("learning_rate", 0.0, "A learning rate is above 0."),
        ("learning_rate", 3.0, "A learning rate above 1 makes every run diverge."),
        ("max_length", 8, "Leave at least 16 tokens for prompt and response."),
        ("batch_size", 0, "greater than or equal to 1"),
        ("processes", 17, "less than or equal to 16"),
        ("epochs", float("nan"), "Enter a finite number."),
        ("method", "half", "is not a valid choice"),
    ],
)
def test_a_runs_settings_keep_the_trainers_limits(name, value, message):
    with pytest.raises(ValidationError) as refused:
        TrainingRun(**{name: value}).clean_fields(exclude=["dataset"])
    assert message in " ".join(refused.value.message_dict[name])


def test_the_form_and_the_command_offer_every_setting_with_its_help():
    names = [s.name for s in SETTINGS]
    form = TrainingRunForm()
    assert list(form.fields) == names
    assert form.fields["lora_rank"].label == "LoRA rank"
    parser = load_command_class("rewardmodels", "train").create_parser("manage.py", "train")
    flags = {action.dest: action for action in parser._actions}
    for setting in SETTINGS:
        assert form.fields[setting.name].help_text == setting.metadata["help"]
        assert flags[setting.name].help.replace("%%", "%") == setting.metadata["help"]
    options = parser.parse_args(["fruit@v1", "--lora-dropout", "0.1", "--margin-loss"])
    assert options.lora_dropout == 0.1 and options.margin_loss is True
    assert options.batch_size == TrainConfig().batch_size
    assert parser.parse_args(["fruit@v1"]).learning_rate is None  # chosen by the worker
