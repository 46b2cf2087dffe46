"""The ML core: encoding, packing, the training loop and its loss, checkpoints, scoring,
metrics and selection. It imports torch, transformers and peft, and nothing of Django or the
apps, so it runs on its own (benchmarks/ use it without a database); workers/tasks/ is the
bridge that loads rows, calls it and writes results back.

    config.py       TrainConfig: a training run's settings
    models.py       loading base models, choosing defaults for them, LoRA, saving
    encoding.py     prompts and responses as token ids
    packing.py      pairs as padded or packed tensors, and the rewards read from them
    batching.py     which pairs go together: training's batches and steps, scoring's
    losses.py       the Bradley-Terry loss and its optional terms
    building.py     the model a run trains: LoRA, DDP or FSDP, compiled layers
    steps.py        one optimizer step: forward, loss, backward over its micro-batches
    checkpoints.py  saving and resuming a run exactly
    training.py     the loop, and its held-out evaluation
    distributed.py  the loop in several processes: shares of each batch, DDP or FSDP
    launch.py       starting a run's processes (torchrun) and following them
    scoring.py      using a saved model: score, evaluate, audit
    probes.py       surface edits a policy could exploit, and the audit's figures
    metrics.py      held-out figures (pure numpy)
    selection.py    ranking and rejection-sampling filters (pure numpy)
"""
