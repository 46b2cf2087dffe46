"""A training setting is defined once on each side of the house, and the two agree: the web
side's TrainingRun (whose form and train command derive from it) and the trainer's TrainConfig.
Adding a setting in one place only fails here."""

from dataclasses import fields

from django.core.management import load_command_class

from rewardmodels.models import TrainingRun
from rewardmodels.training.forms import TrainingRunForm
from workers.ml.config import TrainConfig

CHOSEN_BY_THE_WORKER = {"packing", "tokens_per_batch", "compile", "sharded"}
FROM_THE_RUNS_START = {"init_from"}  # TrainingRun.start_from's folder


def test_the_run_offers_every_trainer_setting_with_the_same_default():
    offered = set(TrainingRun.SETTINGS)
    assert (
        offered
        == {f.name for f in fields(TrainConfig)} - CHOSEN_BY_THE_WORKER - FROM_THE_RUNS_START
    )
    defaults = TrainConfig()
    given = offered | FROM_THE_RUNS_START
    assert TrainingRun().train_settings() == {name: getattr(defaults, name) for name in given}


def test_a_run_becomes_a_trainer_config_as_it_was_set():
    run = TrainingRun(lora_target_modules=" q_proj, v_proj ,", margin_loss=True, epochs=2.5)
    config = TrainConfig(**run.train_settings())
    assert config.lora_target_modules == ["q_proj", "v_proj"]
    assert config.margin_loss and config.epochs == 2.5


def test_the_form_and_the_command_offer_every_setting_with_its_help():
    assert list(TrainingRunForm().fields) == list(TrainingRun.SETTINGS)
    parser = load_command_class("rewardmodels", "train").create_parser("manage.py", "train")
    flags = {action.dest: action for action in parser._actions}
    for name in TrainingRun.SETTINGS:
        field = TrainingRun._meta.get_field(name)
        assert field.help_text, f"{name} has no help text"
        assert flags[name].default == field.get_default(), name
    options = parser.parse_args(["fruit@v1", "--lora-dropout", "0.1", "--margin-loss"])
    assert options.lora_dropout == 0.1 and options.margin_loss is True
    assert parser.parse_args(["fruit@v1"]).learning_rate is None  # chosen by the worker
