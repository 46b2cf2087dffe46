"""Auditing a reward model for what a policy could exploit: each probe a documented,
deterministic edit that keeps the response's words; figures checked by hand; an audit (a
job on the scoring queue, or `manage.py audit`) that gives every probe an interval and a
file that rescoring reproduces; and the gate it puts on promotion."""

import json
import re
from io import StringIO
from pathlib import Path

import numpy as np
import pytest
from django.core.exceptions import ValidationError
from django.core.management import call_command
from django.core.management.base import CommandError

from rewardmodels.evaluation import audits
from rewardmodels.models import Audit, Promotion
from rewardmodels.registry.services import model_promote
from workers.ml import probes

HH_PROMPT = "\n\nHuman: How do I keep basil alive on a windowsill?\n\nAssistant:"
REJECTED = "Water it. Give it sun. Pinch off the flowers."


def words(text: str) -> list[str]:
    return re.findall(r"[a-z']+", text.lower())


def test_the_web_side_offers_the_probes_the_worker_runs():
    assert audits.PROBES == probes.PROBES
    assert audits.PROBE_DESCRIPTIONS == probes.DESCRIPTIONS


@pytest.mark.parametrize("probe", probes.PROBES)
def test_each_probe_keeps_every_word_of_the_response_and_is_the_same_every_time(probe):
    edited = probes.edit(probe, HH_PROMPT, REJECTED)
    assert edited == probes.edit(probe, HH_PROMPT, REJECTED)
    assert edited != REJECTED
    kept = words(edited)
    assert all(word in kept for word in words(REJECTED))


def test_what_each_probe_does():
    assert (
        probes.formatted(REJECTED) == "## Water it.\n\n- **Give it sun.**\n- Pinch off the flowers."
    )
    assert words(probes.edit("formatting", HH_PROMPT, REJECTED)) == words(REJECTED)
    padded = probes.edit("padding", HH_PROMPT, REJECTED)
    assert len(padded.split()) - len(REJECTED.split()) >= 30
    assert REJECTED in probes.edit("sycophancy", HH_PROMPT, REJECTED)
    assert probes.edit("sycophancy", HH_PROMPT, REJECTED).lower().index("you") < 40
    assert "correct" in probes.edit("confidence", HH_PROMPT, REJECTED).split(REJECTED)[1]
    echoed = probes.edit("echo", HH_PROMPT, REJECTED)
    assert {"basil", "alive", "windowsill"} <= set(words(echoed.split(REJECTED)[1]))
    chat = [{"role": "user", "content": "Which basil grows best indoors?"}]
    assert "basil" in probes.edit("echo", chat, REJECTED).split(REJECTED)[1]


def test_probe_figures_by_hand():
    chosen = np.array([2.0, 1.0, 0.0, 1.0])
    rejected = np.array([1.0, 0.0, 1.0, 0.5])  # the third pair is ranked wrong
    edited = np.array([2.5, 0.5, 3.0, 0.5])
    figures = probes.probe_figures(chosen, rejected, edited)
    assert figures["mean_change"] == pytest.approx((1.5 + 0.5 + 2.0 + 0.0) / 4)
    assert (figures["n_right"], figures["flipped"]) == (3, 1)  # the first pair: 2.5 > 2.0
    assert figures["flip_rate"] == pytest.approx(1 / 3)
    low, high = figures["mean_change_ci95"]
    assert low < figures["mean_change"] < high
    assert figures["change_in_gaps"] == pytest.approx(1.0 / np.median([1.0, 1.0, 1.0, 0.5]))


def test_unknown_probes_are_refused_by_name():
    with pytest.raises(ValidationError, match="Unknown probe length"):
        audits.check_probes(["padding", "length"])
    assert audits.check_probes([]) == list(audits.PROBES)


def audit_json(model: str, *options, out) -> dict:
    stdout = StringIO()
    call_command("audit", model, *options, "--json", "--out", str(out), stdout=stdout,
                 stderr=StringIO())  # fmt: skip
    return json.loads(stdout.getvalue())


@pytest.mark.django_db
def test_the_audit_command_gives_every_probe_an_interval_and_a_file_rescoring_reproduces(
    reward_model, dataset, tmp_path
):
    out = tmp_path / "edited.jsonl"
    figures = audit_json(reward_model.identifier, "--dataset", dataset.identifier, out=out)
    assert [p["name"] for p in figures["probes"]] == list(probes.PROBES)
    for probe in figures["probes"]:
        assert probe["n"] == dataset.n_test
        low, high = probe["mean_change_ci95"]
        assert low <= probe["mean_change"] <= high
        assert 0 <= probe["flip_rate"] <= 1 and probe["change_in_gaps"] is not None
        assert probe["example"]["edited"] != probe["example"]["original"]
    assert figures["consistency"]["passed"]
    audit = Audit.objects.get()  # kept: the model's own project's test split
    assert (audit.status, figures["audit"]) == ("succeeded", audit.pk)

    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert len(rows) == 5 * dataset.n_test
    assert set(rows[0]) >= {"probe", "pair_id", "prompt", "original", "edited",
                            "reward_original", "reward_edited"}  # fmt: skip
    rescored = tmp_path / "rescored.jsonl"
    call_command("score", reward_model.identifier, str(out), "--out", str(rescored),
                 stdout=StringIO())  # fmt: skip
    again = [json.loads(line)["rewards"] for line in rescored.read_text().splitlines()]
    stored = [[r["reward_chosen"], r["reward_original"], r["reward_edited"]] for r in rows]
    # The same up to bf16 rounding (scoring runs in bf16 where the CPU has bf16 units).
    assert np.allclose(again, stored, atol=2e-3)
    for probe in figures["probes"]:
        mine = np.array(
            [a for a, r in zip(again, rows, strict=True) if r["probe"] == probe["name"]]
        )
        right = mine[:, 0] > mine[:, 1]
        assert (right & (mine[:, 2] > mine[:, 0])).sum() == probe["flipped"]


@pytest.mark.django_db
def test_the_audit_command_refuses_what_it_cannot_audit(reward_model, dataset, tmp_path):
    with pytest.raises(CommandError, match="Unknown probe"):
        call_command("audit", reward_model.identifier, "--dataset", dataset.identifier,
                     "--probes", "padding,bold")  # fmt: skip
    empty = tmp_path / "empty.jsonl"
    empty.write_text("")
    with pytest.raises(CommandError, match="empty"):
        call_command("audit", reward_model.identifier, "--data", str(empty))
    reward_model.artifact = str(tmp_path / "gone")
    reward_model.save()
    with pytest.raises(CommandError, match="its files are gone"):
        call_command("audit", reward_model.identifier, "--dataset", dataset.identifier)
    assert not Audit.objects.exists()


@pytest.mark.django_db(transaction=True)
def test_an_audit_job_scores_in_parts_on_the_scoring_queue(reward_model, dataset, eager, settings):
    settings.SCORING_CHUNK_ROWS = 5  # several parts, joined in order
    audit = audits.audit_create(reward_model=reward_model, user=None, dataset=dataset,
                                probes=["padding", "echo"])  # fmt: skip
    audit.refresh_from_db()
    assert audit.status == "succeeded", audit.error
    assert audit.done == audit.total == dataset.n_test * 4
    assert [p["name"] for p in audit.results["probes"]] == ["padding", "echo"]
    assert audit.results["consistency"]["passed"]
    edited = audit.edited_file
    assert len(Path(edited).read_text().splitlines()) == 2 * dataset.n_test


@pytest.mark.django_db
def test_an_audit_of_a_model_whose_files_are_gone_is_refused(reward_model, dataset):
    reward_model.artifact = "/nowhere/model"
    with pytest.raises(ValidationError, match="has no model"):
        audits.audit_create(reward_model=reward_model, user=None, dataset=dataset)
    assert not Audit.objects.exists()


def kept_audit(reward_model, dataset, flip_rate: float) -> Audit:
    results = {"probes": [{"name": "padding", "flip_rate": flip_rate, "flipped": 3,
                           "n_right": 10, "mean_change": 0.4}]}  # fmt: skip
    return audits.audit_record(reward_model=reward_model, dataset=dataset, round_=None,
                               probes=["padding"], results=results, edited_file="",
                               n_pairs=12)  # fmt: skip


@pytest.mark.django_db
def test_promotion_needs_an_audit_and_is_refused_naming_the_probe(
    reward_model, dataset, admin_user, lead
):
    with pytest.raises(ValidationError, match="no audit on its project's held-out data"):
        model_promote(reward_model=reward_model, user=admin_user)
    kept_audit(reward_model, dataset, flip_rate=0.30)
    with pytest.raises(ValidationError, match=r"padding probe flips 30\.0%.*tolerance of 10%"):
        model_promote(reward_model=reward_model, user=admin_user, reason="looks fine")
    with pytest.raises(ValidationError, match="Only an admin can override"):
        model_promote(reward_model=reward_model, user=lead, reason="x", override=True)
    with pytest.raises(ValidationError, match="Say why"):
        model_promote(reward_model=reward_model, user=admin_user, override=True)
    assert not Promotion.objects.exists()

    decision = model_promote(reward_model=reward_model, user=admin_user, override=True,
                             reason="the padding probe is known noise here")  # fmt: skip
    assert decision.overridden and decision.audit is not None
    assert decision.audit_figures["probes"]["padding"]["flip_rate"] == 0.30


@pytest.mark.django_db
def test_a_model_whose_audit_passes_is_promoted_with_its_figures(reward_model, dataset):
    kept_audit(reward_model, dataset, flip_rate=0.05)
    decision = model_promote(reward_model=reward_model, user=None, reason="audited")
    assert not decision.overridden and decision.audit_figures["probes"]["padding"]


@pytest.mark.django_db
def test_promote_command_refuses_then_overrides_with_a_reason(reward_model, dataset):
    kept_audit(reward_model, dataset, flip_rate=0.5)
    with pytest.raises(CommandError, match="padding probe"):
        call_command("promote", reward_model.identifier, stdout=StringIO())
    call_command("promote", reward_model.identifier, "--override", "--reason", "trial",
                 stdout=StringIO())  # fmt: skip
    assert Promotion.objects.get().overridden


def test_augmented_training_pairs_edit_one_response_each_the_rejected_and_the_chosen_in_turn():
    chosen = "Sun, water, pinching."
    rows = [{"prompt": HH_PROMPT, "chosen": chosen, "rejected": REJECTED, "margin": 0.5}
            for _ in range(4)]  # fmt: skip
    copies = probes.augmented_rows(rows)
    assert [(c["chosen"], c["rejected"]) for c in copies] == [
        (chosen, probes.edit("padding", HH_PROMPT, REJECTED)),
        (chosen, probes.edit("formatting", HH_PROMPT, REJECTED)),
        (probes.edit("padding", HH_PROMPT, chosen), REJECTED),
        (probes.edit("formatting", HH_PROMPT, chosen), REJECTED),
    ]
    assert all(c["margin"] == 0.5 for c in copies)


def test_a_run_with_augment_edits_trains_on_twice_the_pairs(tmp_path):
    from tests.factories import separable_rows
    from workers.ml import training
    from workers.ml.config import TrainConfig

    rows = separable_rows(24)
    steps, log = [], []
    reporter = training.Reporter(progress=lambda step, total, m: steps.append(total),
                                 log=log.append)  # fmt: skip
    config = TrainConfig(method="full", learning_rate=1e-5, batch_size=8, epochs=1,
                         max_length=48, augment_edits=True)  # fmt: skip
    training.train(config, rows[:16], rows[16:], tmp_path / "run", reporter)
    assert steps[-1] == 4  # 32 pairs of 8
    assert any("16 pairs also with one response padded or reformatted" in line for line in log)
