"""One optimizer step, as a reward-model person would check it: fp32 master weights whatever
the checkpoint's dtype, every pair of a step weighing the same, step figures over the whole
step, one final evaluation, and a diverging run stopped at its step."""

import pytest
import torch
from safetensors.torch import load_file

from tests.factories import separable_rows
from tests.workers.decoder_models import decoder_model
from workers.ml import losses, steps, training
from workers.ml.config import TrainConfig


def bf16_decoder(folder) -> str:
    """A tiny Qwen2-shaped decoder saved in bf16, as every Qwen and Llama on the Hub is."""
    from transformers import AutoModelForSequenceClassification

    fp32 = decoder_model(folder / "fp32", "qwen")
    model = AutoModelForSequenceClassification.from_pretrained(fp32, dtype=torch.float32)
    model.to(torch.bfloat16).save_pretrained(folder / "bf16")
    from transformers import AutoTokenizer

    AutoTokenizer.from_pretrained(fp32).save_pretrained(folder / "bf16")
    return str(folder / "bf16")


def share_moved(before: dict, after: dict) -> float:
    """The share of the trained weights (the layers and the score head) that one step changed."""
    names = [n for n in before if "embed" not in n]
    moved = sum(int((after[n].float() != before[n].float()).sum()) for n in names)
    return moved / sum(before[n].numel() for n in names)


def test_a_bf16_checkpoint_trains_fp32_master_weights_and_saves_fp32(tmp_path):
    base = bf16_decoder(tmp_path)
    config = TrainConfig(
        augment_edits=False,
        base_model=base, method="full", learning_rate=1e-5, batch_size=16, epochs=1,
        warmup_ratio=0.0, max_length=48,
    )  # fmt: skip
    rows = separable_rows(20)
    training.train(config, rows[:16], rows[16:], tmp_path / "run")  # one step
    before = load_file(f"{base}/model.safetensors")
    after = load_file(tmp_path / "run" / "model" / "model.safetensors")
    assert {t.dtype for t in before.values()} == {torch.bfloat16}
    assert {t.dtype for t in after.values()} == {torch.float32}
    # In bf16 an update of 1e-5 is lost on most weights of size 0.02 (12% moved).
    assert share_moved(before, after) > 0.99


def test_every_pair_of_a_step_weighs_the_same_however_micro_batches_split_it():
    torch.manual_seed(0)
    features = torch.randn(8, 2, 5)  # pair, (chosen, rejected), feature

    def gradients(window: list[list[int]]) -> tuple[torch.Tensor, list[float]]:
        net = torch.nn.Linear(5, 1)
        torch.manual_seed(1)
        torch.nn.init.normal_(net.weight)

        def batch_loss(batch_ids):
            rewards = net(features[batch_ids]).squeeze(-1)
            chosen, rejected = rewards[:, 0], rewards[:, 1]
            loss = losses.bradley_terry_loss(chosen, rejected)
            return loss, chosen, rejected, loss

        figures = steps.accumulate_gradients(net, window, batch_loss).tolist()
        return net.weight.grad.clone(), figures

    whole, whole_figures = gradients([list(range(8))])
    # A packed step: micro-batches of 1, 2 and 5 pairs.
    split, split_figures = gradients([[0], [1, 2], [3, 4, 5, 6, 7]])
    assert torch.allclose(split, whole, atol=1e-6)
    assert split_figures == pytest.approx(whole_figures, rel=1e-5)
    assert 0 < whole_figures[1] < 1  # the share of pairs right, over all 8


@pytest.mark.parametrize("packing", [False, True], ids=["padded", "packed"])
def test_step_figures_are_over_the_whole_step_and_the_final_model_is_evaluated_once(
    tmp_path, packing
):
    base = decoder_model(tmp_path / "base", "qwen")
    rows = separable_rows(16)
    # One step over all 16 pairs (four padded micro-batches, or packed ones of 1 to 6 pairs),
    # held out on the same pairs: the step's figures are the untrained model's on all 16.
    config = TrainConfig(
        augment_edits=False,
        base_model=base, method="full", learning_rate=1e-5, batch_size=4,
        gradient_accumulation=16, epochs=1, max_length=48, packing=packing,
        tokens_per_batch=160 if packing else 0, compile=False,
    )  # fmt: skip
    steps, evaluations = [], []
    original = training.evaluate

    def counted(*args, **kwargs):
        evaluations.append(1)
        return original(*args, **kwargs)

    reporter = training.Reporter(progress=lambda step, total, m: steps.append(m))
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(training, "evaluate", counted)
        final = training.train(config, rows, rows, tmp_path / "run", reporter)
    untrained, step = steps[0]["eval"], steps[-1]
    assert step["step"] == 1
    assert step["loss"] == pytest.approx(untrained["loss"], rel=1e-4)
    assert step["accuracy"] == pytest.approx(untrained["accuracy"])
    assert step["mean_reward_gap"] == pytest.approx(
        untrained["mean_reward_gap"], rel=1e-4, abs=1e-6
    )
    assert len(evaluations) == 2  # the untrained model and the final one, not twice
    assert final["accuracy"] == step["eval"]["accuracy"]


def test_a_diverging_run_stops_at_its_step_with_a_message(tmp_path):
    config = TrainConfig(
        augment_edits=False,
        method="full", learning_rate=1e30, batch_size=8, epochs=2, max_length=48,
        eval_every=100, checkpoint_every=100,
    )  # fmt: skip
    rows = separable_rows(40)
    seen = []
    reporter = training.Reporter(progress=lambda step, total, m: seen.append(step))
    with pytest.raises(training.Diverged, match=r"became nan at step \d+ of 8.*lower learning"):
        training.train(config, rows[:32], rows[32:], tmp_path / "run", reporter)
    assert not (tmp_path / "run" / "model").exists()


def test_more_processes_than_a_cpu_host_has_cores_fail_with_a_message():
    from workers.ml import launch

    if torch.cuda.is_available():
        pytest.skip("a GPU host counts GPUs")
    with pytest.raises(ValueError, match="no GPU and .* CPU core"):
        launch.process_count(100000)
    assert launch.process_count(0) == 1
