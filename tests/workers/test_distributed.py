"""A run in two processes (torch.distributed on the gloo backend, on the CPU) trains what the
one-process run trains: the same losses and held-out figures step by step, one model that
loads with plain transformers. Cancelling stops both processes; a run whose task is killed
leaves no process behind and resumes from its checkpoint, whole (DDP) or sharded (FSDP)."""

import contextlib
import json
import signal
import subprocess
import sys
from dataclasses import asdict

import psutil
import pytest
import torch
from transformers import AutoModelForSequenceClassification

from tests.factories import separable_rows
from tests.workers.decoder_models import decoder_model
from workers.ml import checkpoints, launch, packing, training
from workers.ml.config import TrainConfig
from workers.ml.encoding import encode_rows
from workers.ml.models import load_tokenizer

ROWS = separable_rows(64)
TRAIN, TEST = ROWS[:45], ROWS[45:]  # batches of 4: the last has one pair, for one process
# Each way of splitting the work, with what else must keep working under it.
SPLITS = {
    "ddp": {"sharded": False, "method": "full", "packing": True, "gradient_checkpointing": True},
    "fsdp": {"sharded": True, "method": "lora", "lora_dropout": 0.0},
}


@pytest.fixture(scope="module")
def base(tmp_path_factory):
    return decoder_model(tmp_path_factory.mktemp("base"), "qwen")


def config(base: str, processes: int, split: str, **extra) -> TrainConfig:
    settings = dict(
        base_model=base, processes=processes, learning_rate=3e-3, batch_size=4,
        gradient_accumulation=2, epochs=1, eval_every=3, checkpoint_every=2, max_length=64,
        margin_loss=True, center_rewards=0.01, length_penalty=0.1,
    )  # fmt: skip
    return TrainConfig(augment_edits=False, **{**settings, **SPLITS[split], **extra})


class Recorder(training.Reporter):
    """Each step's metrics, the log lines and the settings chosen, as the task's reporter
    would receive them."""

    def __init__(self, stop_at: int | None = None):
        self.steps: dict[int, dict] = {}
        self.lines: list[str] = []
        self.chosen: list[dict] = []
        self.stop_at = stop_at
        super().__init__(
            progress=lambda step, total, metrics: self.steps.__setitem__(step, metrics),
            log=self.lines.append,
            should_stop=lambda: stop_at is not None and max(self.steps, default=0) >= stop_at,
            settings_chosen=lambda **chosen: self.chosen.append(chosen),
        )


def run(cfg: TrainConfig, folder, recorder: Recorder | None = None) -> tuple[dict, Recorder]:
    recorder = recorder or Recorder()
    return launch.run_training(cfg, TRAIN, TEST, folder, recorder), recorder


def assert_same_steps(one: dict, other: dict, steps) -> None:
    for step in steps:
        if step:
            assert other[step]["loss"] == pytest.approx(one[step]["loss"], rel=1e-4), step
        if "eval" in one[step]:
            for figure in ("accuracy", "mean_reward_gap", "reward_std"):
                got, expected = other[step]["eval"][figure], one[step]["eval"][figure]
                assert got == pytest.approx(expected, rel=1e-4, abs=1e-6), (step, figure)


def scores(model_folder, tokenizer) -> torch.Tensor:
    model = AutoModelForSequenceClassification.from_pretrained(model_folder).eval()
    items = encode_rows(tokenizer, TEST, 64, decoder=True)
    with torch.no_grad():
        return packing.rewards(model, packing.collate(items, tokenizer.pad_token_id, "cpu"))


@pytest.mark.parametrize("split", SPLITS)
def test_two_processes_train_what_one_process_trains(base, tmp_path, split):
    one_final, one = run(config(base, 1, split), tmp_path / "one")
    two_final, two = run(config(base, 2, split), tmp_path / "two")

    assert sorted(two.steps) == sorted(one.steps) == list(range(7))  # 12 batches, 2 a step
    assert_same_steps(one.steps, two.steps, range(7))
    assert two_final["accuracy"] == pytest.approx(one_final["accuracy"])
    assert two_final["untrained"]["mean_reward_gap"] == pytest.approx(
        one_final["untrained"]["mean_reward_gap"], rel=1e-4
    )
    assert two.steps[6]["tokens"] == one.steps[6]["tokens"]  # both processes' tokens counted
    assert any(f"2 processes ({split.upper()}" in line for line in two.lines), two.lines
    # The settings the trainer settled come back from the processes as from one, once.
    assert two.chosen == one.chosen == [{"method": SPLITS[split]["method"], "learning_rate": 3e-3}]
    if SPLITS[split].get("packing"):  # a row for each process's share, not the whole batch's
        (rows,) = [line for line in two.lines if line.startswith("each process packs")]
        (whole,) = [line for line in one.lines if line.startswith("packed batches of")]
        assert int(rows.split()[-2]) < int(whole.split()[3]), (rows, whole)

    # One model, written once, that loads with plain transformers and scores like the other.
    tokenizer = load_tokenizer(base)
    assert scores(tmp_path / "two" / "model", tokenizer) == pytest.approx(
        scores(tmp_path / "one" / "model", tokenizer), abs=1e-4
    )
    assert checkpoints.find_checkpoint(tmp_path / "two") is None
    assert not list((tmp_path / "two" / launch.ATTEMPTS).iterdir())  # the attempt cleaned up


def launched_processes() -> list[psutil.Process]:
    """The launcher and the training processes under this test's process."""
    found = []
    for process in psutil.Process().children(recursive=True):
        with contextlib.suppress(psutil.NoSuchProcess):
            if "workers.ml.launch" in " ".join(process.cmdline()):
                found.append(process)
    return found


def test_cancelling_stops_both_processes_at_the_same_step(base, tmp_path):
    seen: list[psutil.Process] = []
    totals: list[int] = []
    recorder = Recorder(stop_at=2)
    recorder.progress = lambda step, total, metrics: (
        recorder.steps.__setitem__(step, metrics),
        totals.append(total),
        seen.extend(launched_processes()) if step == 1 else None,
    )
    with pytest.raises(training.Cancelled, match="cancelled at step"):
        run(config(base, 2, "ddp", epochs=8), tmp_path / "run", recorder)

    assert len(seen) == 3  # the launcher and its two processes
    _, alive = psutil.wait_procs(seen, timeout=0)
    assert not alive, alive
    assert max(recorder.steps) < totals[0] == 48  # stopped long before the end
    assert not (tmp_path / "run" / "model").exists()


KILLED_TASK = """
import json, sys
from pathlib import Path
from workers.ml import launch, training
from workers.ml.config import TrainConfig
spec = json.loads(Path(sys.argv[1]).read_text())
reporter = training.Reporter(progress=lambda step, total, metrics: print(step, flush=True))
launch.run_training(TrainConfig(**spec["config"]), spec["train"], spec["test"],
                    Path(spec["folder"]), reporter)
"""


@pytest.mark.parametrize("split", SPLITS)
def test_a_killed_task_leaves_no_process_and_the_run_resumes(base, tmp_path, split):
    """The task (a process of its own here) is SIGKILLed once it has seen step 5 (a
    checkpoint every 2 steps); its launcher and training processes stop by themselves, and a
    new attempt goes on from the last checkpoint with the losses of a run that never
    stopped."""
    cfg = config(base, 2, split, epochs=6)  # 36 steps: a few seconds
    _, straight = run(config(base, 1, split, epochs=6), tmp_path / "straight")
    last = max(straight.steps)

    folder = tmp_path / "killed"
    spec = tmp_path / "spec.json"
    spec.write_text(json.dumps({
        "config": asdict(cfg), "train": TRAIN, "test": TEST, "folder": str(folder),
    }))  # fmt: skip
    task = subprocess.Popen(
        [sys.executable, "-c", KILLED_TASK, str(spec)], stdout=subprocess.PIPE, text=True
    )
    lines = iter(task.stdout.readline, "")
    assert next(line for line in lines if line.strip() == "5"), "the run ended early"
    assert checkpoints.find_checkpoint(folder) is not None
    launched = psutil.Process(task.pid).children(recursive=True)
    task.send_signal(signal.SIGKILL)
    task.wait()
    gone, alive = psutil.wait_procs(launched, timeout=60)
    assert not alive, [p.cmdline() for p in alive]
    if split == "fsdp":
        assert (folder / checkpoints.SHARDED_CHECKPOINT / checkpoints.SHARED_STATE).exists()

    final, resumed = run(cfg, folder)
    (line,) = [line for line in resumed.lines if line.startswith("resumed from the checkpoint")]
    at = int(line.rsplit(" ", 1)[1])
    assert 4 <= at < last and sorted(resumed.steps) == list(range(at + 1, last + 1))
    assert_same_steps(straight.steps, resumed.steps, range(at + 1, last + 1))
    assert checkpoints.find_checkpoint(folder) is None
    assert AutoModelForSequenceClassification.from_pretrained(folder / "model")


def test_a_run_for_every_gpu_takes_one_process_on_a_cpu(monkeypatch):
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 0)
    assert launch.process_count(0) == 1
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 4)
    assert launch.process_count(0) == 4 and launch.process_count(2) == 2
    with pytest.raises(ValueError, match="asks for 8 processes, one per GPU, and this worker"):
        launch.process_count(8)


def test_an_error_in_a_process_fails_the_run_with_its_message(base, tmp_path):
    cfg = config(base, 2, "ddp", lora_target_modules=["no_such_layer"], method="lora")
    with pytest.raises(RuntimeError, match="no modules named no_such_layer"):
        run(cfg, tmp_path / "run")
    assert not launched_processes()
    (attempt,) = (tmp_path / "run" / launch.ATTEMPTS).iterdir()  # kept to read, rows removed
    assert sorted(p.name for p in attempt.iterdir()) == ["config.json", "events.jsonl",
                                                         "output.log"]  # fmt: skip


def test_a_checkpoint_resumes_in_the_other_layout(base, tmp_path):
    """A run checkpointed whole (one process) goes on sharded in two processes (FSDP), and
    that run's sharded checkpoint goes on whole in two processes (DDP), each with the losses
    of the run that never stopped."""
    settings = {**SPLITS["fsdp"], "epochs": 6}  # 36 steps of one model in every layout
    _, straight = run(config(base, 1, "fsdp", **settings), tmp_path / "straight")
    last = max(straight.steps)
    folder = tmp_path / "run"

    def resumed_at(recorder: Recorder) -> int:
        (line,) = [line for line in recorder.lines if line.startswith("resumed from")]
        return int(line.rsplit(" ", 1)[1])

    with pytest.raises(training.Cancelled):
        run(config(base, 1, "fsdp", **settings), folder, Recorder(stop_at=3))
    assert (folder / checkpoints.CHECKPOINT).exists()

    on_fsdp = Recorder(stop_at=5)
    with pytest.raises(training.Cancelled):
        run(config(base, 2, "fsdp", **settings), folder, on_fsdp)
    assert resumed_at(on_fsdp) == 2
    stopped = max(on_fsdp.steps)
    assert 5 <= stopped < last
    assert_same_steps(straight.steps, on_fsdp.steps, range(3, stopped + 1))

    _, on_ddp = run(config(base, 2, "fsdp", **{**settings, "sharded": False}), folder)
    at = resumed_at(on_ddp)
    assert 4 <= at <= stopped and sorted(on_ddp.steps) == list(range(at + 1, last + 1))
    assert_same_steps(straight.steps, on_ddp.steps, range(at + 1, last + 1))
    assert checkpoints.find_checkpoint(folder) is None
