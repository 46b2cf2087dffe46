"""Celery tasks, the one bridge between the apps and the ML core: each takes an id, loads
its row, runs the work, and writes progress and results back to the row; state lives in the
database, not in the broker. One module per kind of work; importing this package registers
them all (config.celery autodiscovers `workers.tasks`)."""

from workers.tasks import annotation, answers, scoring, training  # noqa: F401 - registers them
from workers.tasks.annotation import judge_pairs
from workers.tasks.training import train_reward_model

__all__ = ["judge_pairs", "train_reward_model"]
