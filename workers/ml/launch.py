"""Running a training run in one process or in several (one per GPU).

run_training() is what the worker's task calls. With one process it trains right there.
With several it starts torch.distributed's own launcher as a child process:

    python -m torch.distributed.run --standalone --nproc-per-node N -m workers.ml.launch ATTEMPT

Each process reads the run's settings and rows from the attempt's folder and calls
training.train; rank 0 appends its progress and log lines to events.jsonl there, which
run_training() hands on to the task's reporter as they come. To stop the run (cancelled, or
its lease lost), run_training() writes a `stop` file: every process stops before its next
step, together. Each process also stops when the task that started it is gone (a killed
worker), so that a redelivered run is never trained twice at once; it resumes from the last
checkpoint.
"""

# torchrun runs as a child process here, not torch.distributed.launcher.api.elastic_launch
# inside the task, because elastic_launch blocks its caller until every process has exited
# and has no call to stop them: the task could neither hand on rank 0's progress nor follow
# its lease and the cancel flag without a thread of its own, and past the stop file's grace
# it could end the processes only by signalling them itself, as _follow does the launcher.
# Called from the main thread (where a Celery worker runs its tasks) it also replaces that
# process's SIGTERM, SIGINT, SIGHUP and SIGQUIT handlers, the worker's warm shutdown among
# them. What it would add, processes that end with a killed task, _owner_gone gives already.

import json
import os
import shutil
import signal
import subprocess
import sys
import time
import traceback
import uuid
from dataclasses import asdict
from pathlib import Path

import torch

from workers.ml import distributed, training
from workers.ml.config import TrainConfig

ATTEMPTS = "processes"  # in the run's folder: one folder per attempt at a run of several
POLL_SECONDS = 0.5
STOP_GRACE_SECONDS = 120  # from the stop file to SIGTERM: a step and a held-out evaluation
KILL_GRACE_SECONDS = 30  # from SIGTERM (the launcher stops its processes) to SIGKILL
OWNER = "PREFHUB_TRAINING_OWNER"  # the pid of the task that started the processes
ROOT = Path(__file__).resolve().parents[2]


def process_count(requested: int) -> int:
    """`requested`, or with 0 every GPU this host has (one process on a CPU). More processes
    than GPUs is an error; on a CPU, more than its cores (they share them, with gloo)."""
    gpus = torch.cuda.device_count()
    if gpus and requested > gpus:
        raise ValueError(
            f"The run asks for {requested} processes, one per GPU, and this worker has "
            f"{gpus} GPU{'s' * (gpus != 1)}: train it with {gpus} or fewer, or with 0 (all)."
        )
    cores = os.cpu_count() or 1
    if not gpus and requested > cores:
        raise ValueError(
            f"The run asks for {requested} processes and this worker has no GPU and {cores} "
            f"CPU core{'s' * (cores != 1)}: train it with {cores} or fewer, or with 0 (one)."
        )
    return requested or gpus or 1


def run_training(
    config: TrainConfig,
    train_rows: list[dict],
    test_rows: list[dict],
    output_dir: Path,
    reporter: training.Reporter,
) -> dict:
    """training.train, in config.processes processes; returns rank 0's final figures and
    raises training.Cancelled or the error of the process that failed as training.train
    does."""
    processes = process_count(config.processes)
    if processes == 1:
        return training.train(config, train_rows, test_rows, output_dir, reporter)
    output_dir = output_dir.resolve()
    attempt = output_dir / ATTEMPTS / uuid.uuid4().hex[:12]
    attempt.mkdir(parents=True)
    (attempt / "config.json").write_text(json.dumps(asdict(config)))
    for name, rows in (("train", train_rows), ("test", test_rows)):
        with (attempt / f"{name}.jsonl").open("w") as out:
            out.writelines(json.dumps(row) + "\n" for row in rows)
    command = [
        sys.executable, "-m", "torch.distributed.run", "--standalone",
        f"--nproc-per-node={processes}", "-m", "workers.ml.launch", str(attempt),
    ]  # fmt: skip
    environment = {
        **os.environ,
        OWNER: str(os.getpid()),
        "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])),
    }
    with (attempt / "output.log").open("w") as output:
        process = subprocess.Popen(
            command, env=environment, stdout=output, stderr=subprocess.STDOUT
        )
    try:
        final = _follow(process, attempt, reporter)
    finally:
        _end(process)
        for name in ("train.jsonl", "test.jsonl"):
            (attempt / name).unlink()
        for earlier in (output_dir / ATTEMPTS).iterdir():
            if earlier != attempt:  # an earlier attempt's processes have stopped by now
                shutil.rmtree(earlier, ignore_errors=True)
    shutil.rmtree(attempt, ignore_errors=True)  # kept, with its output, when it failed
    return final


def _follow(process: subprocess.Popen, attempt: Path, reporter: training.Reporter) -> dict:
    """Hand rank 0's events to the reporter until the processes exit; stop them when the
    reporter says so."""
    events = attempt / "events.jsonl"
    read = 0
    outcome: dict = {}
    stop_asked = terminated = None
    while True:
        exited = process.poll() is not None
        if events.exists():
            with events.open("rb") as source:
                source.seek(read)
                chunk = source.read()
            complete = chunk[: chunk.rfind(b"\n") + 1]  # a line being written waits
            read += len(complete)
            for line in complete.splitlines():
                _dispatch(json.loads(line), reporter, outcome)
        if exited:
            break
        now = time.monotonic()
        if stop_asked is None:
            if reporter.should_stop():
                (attempt / "stop").touch()
                stop_asked = now
        elif terminated is None:
            if now - stop_asked > STOP_GRACE_SECONDS:
                process.send_signal(signal.SIGTERM)  # the launcher stops every process
                terminated = now
        elif now - terminated > KILL_GRACE_SECONDS:
            process.kill()
        time.sleep(POLL_SECONDS)
    if "error" in outcome:
        raise RuntimeError(outcome["error"])
    if "cancelled" in outcome or stop_asked is not None:
        raise training.Cancelled(outcome.get("cancelled", "cancelled"))
    if process.returncode or "final" not in outcome:
        output = attempt / "output.log"
        tail = output.read_text(errors="replace").splitlines()[-15:]
        raise RuntimeError(
            f"the training processes exited with code {process.returncode} (their output is "
            f"in {output}):\n" + "\n".join(tail)
        )
    return outcome["final"]


def _dispatch(event: dict, reporter: training.Reporter, outcome: dict) -> None:
    kind = event.pop("event")
    if kind == "progress":
        reporter.progress(event["step"], event["total"], event["metrics"])
    elif kind == "log":
        reporter.log(event["line"])
    elif kind == "settings":
        reporter.settings_chosen(**event["value"])
    elif kind == "error":
        outcome.setdefault("error", event["message"])  # the first process to fail says why
    else:  # final, cancelled
        outcome[kind] = event["value"]


def _end(process: subprocess.Popen) -> None:
    """Make sure no process outlives the task (an error in the task itself, say)."""
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(KILL_GRACE_SECONDS)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


# ---------------------------------------------------------------------------------------
# In each process started by the launcher


def _owner_gone(owner: int, launcher: int) -> bool:
    """Whether the task that started the run, or the launcher between, has gone away."""
    return os.getppid() != launcher or not _running(owner)


def _running(pid: int) -> bool:
    """Whether the process exists and has not exited (a zombie waits for its parent)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return True  # no /proc (not Linux): it exists
    return state != "Z"


def main(attempt: Path) -> int:
    import torch.distributed as dist

    config = TrainConfig(**json.loads((attempt / "config.json").read_text()))
    rows = {
        name: [json.loads(line) for line in (attempt / f"{name}.jsonl").read_text().splitlines()]
        for name in ("train", "test")
    }
    if torch.cuda.is_available():
        torch.cuda.set_device(int(os.environ["LOCAL_RANK"]))
    dist.init_process_group("nccl" if torch.cuda.is_available() else "gloo")
    main_process = distributed.is_main()
    owner, launcher = int(os.environ[OWNER]), os.getppid()

    def write(kind: str, **values) -> None:
        line = json.dumps({"event": kind, **values}, default=str) + "\n"
        with (attempt / "events.jsonl").open("a") as events:
            events.write(line)

    reporter = training.Reporter(
        progress=lambda step, total, metrics: (
            write("progress", step=step, total=total, metrics=metrics) if main_process else None
        ),
        log=lambda line: write("log", line=line) if main_process else None,
        should_stop=lambda: (attempt / "stop").exists() or _owner_gone(owner, launcher),
        settings_chosen=lambda **chosen: write("settings", value=chosen) if main_process else None,
    )
    output_dir = attempt.parent.parent
    try:
        final = training.train(config, rows["train"], rows["test"], output_dir, reporter)
        if main_process:
            write("final", value=final)
    except training.Cancelled as stopped:
        if main_process:
            write("cancelled", value=str(stopped))
    except Exception as error:  # noqa: BLE001 - reported to the task, which records it
        write("error", message=f"{type(error).__name__}: {error}")
        traceback.print_exc()
        return 1
    else:
        distributed.barrier()  # rank 0 has written the model: every process ends together
    finally:
        dist.destroy_process_group()
    return 0


if __name__ == "__main__":
    sys.exit(main(Path(sys.argv[1])))
