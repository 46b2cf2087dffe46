"""A run stopped and resumed from its checkpoint goes on exactly as if it had never stopped,
and its checkpoints hold what training changes, not the frozen base model."""

import pytest
import torch

from tests.factories import separable_rows
from tests.workers.decoder_models import decoder_model
from workers.ml import checkpoints, training
from workers.ml.config import TrainConfig


def lora_config(base: str) -> TrainConfig:
    return TrainConfig(
        augment_edits=False,
        base_model=base, method="lora", lora_dropout=0.3, learning_rate=3e-3, batch_size=8,
        epochs=1, eval_every=100, checkpoint_every=2, max_length=64,
    )  # fmt: skip


def losses(config, rows, folder, stop_at: int | None = None) -> dict[int, float]:
    seen: dict[int, float] = {}
    reporter = training.Reporter(
        progress=lambda step, total, m: seen.__setitem__(step, m.get("loss")),
        should_stop=lambda: stop_at is not None and max(seen, default=0) >= stop_at,
    )
    training.train(config, rows[:48], rows[48:], folder, reporter)
    return seen


def test_a_resumed_lora_run_with_dropout_repeats_the_same_losses(tmp_path):
    base = decoder_model(tmp_path / "base", "qwen")
    rows = separable_rows(64)
    config = lora_config(base)
    straight = losses(config, rows, tmp_path / "straight")
    assert len(straight) == 7  # step 0 and six steps

    with pytest.raises(training.Cancelled):
        losses(config, rows, tmp_path / "stopped", stop_at=3)
    checkpoint = tmp_path / "stopped" / checkpoints.CHECKPOINT
    state = torch.load(checkpoint, weights_only=True)  # loads without running any code
    assert state["step"] == 2
    frozen = [name for name in state["weights"] if "lora_" not in name and "score" not in name]
    assert state["weights"] and not frozen  # adapters and the score head only
    assert {"python", "numpy", "torch"} <= set(state["rng"])

    resumed = losses(config, rows, tmp_path / "stopped")
    assert sorted(resumed) == [3, 4, 5, 6]
    for step in resumed:
        assert resumed[step] == straight[step], step  # the same dropout masks, step for step


def test_a_checkpoint_of_the_earlier_whole_format_resumes(tmp_path):
    """A whole checkpoint written before optimizer state was kept by parameter name (by
    position in the optimizer) still resumes, with the losses of the run that never stopped."""
    base = decoder_model(tmp_path / "base", "qwen")
    rows = separable_rows(64)
    config = lora_config(base)
    straight = losses(config, rows, tmp_path / "straight")
    with pytest.raises(training.Cancelled):
        losses(config, rows, tmp_path / "stopped", stop_at=3)
    checkpoint = tmp_path / "stopped" / checkpoints.CHECKPOINT
    state = torch.load(checkpoint, weights_only=True)
    groups = state["optimizer"]["param_groups"]
    position = {name: i for i, name in enumerate(n for g in groups for n in g["params"])}
    state["optimizer"] = {
        "state": {position[name]: value for name, value in state["optimizer"]["state"].items()},
        "param_groups": [{**g, "params": [position[n] for n in g["params"]]} for g in groups],
    }
    torch.save(state, checkpoint)

    resumed = losses(config, rows, tmp_path / "stopped")
    assert sorted(resumed) == [3, 4, 5, 6]
    for step in resumed:
        assert resumed[step] == straight[step], step
