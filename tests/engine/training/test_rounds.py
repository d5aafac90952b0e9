"""A round end to end, in process: snapshot the verified masklets, train from the promoted model,
register the candidate, evaluate both on the held-out video with the simulated protocol, and
promote only a better candidate. The work is tiny (test_tiny, 128 px, one object, few steps)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import torch

from engine.errors import Conflict, PermissionDenied
from engine.models import Job, ModelVersion, Round
from engine.training import rounds, versions
from engine.training.data import split_videos, video_hash_fraction
from engine.training.triggers import get_round_settings
from tests.engine.training._round_data import verified_procedural_videos
from tests.engine.training._training import model_settings

__all__ = ["model_settings"]
pytestmark = pytest.mark.django_db
STEPS = 10


def no_send(name: str, args: list[Any], queue: str) -> None:
    return None


@pytest.fixture
def round_settings(model_settings: Any) -> Any:
    model_settings.TASK_SENDER = f"{__name__}.no_send"
    model_settings.ROUND_HOLDOUT_FRACTION = 0.0  # exactly one held-out video (the lowest hash)
    model_settings.ROUND_BASE_LR = 3e-3  # from random weights, a few steps must move them
    model_settings.ROUND_VISION_LR = 1.5e-3
    model_settings.ROUND_NUM_FRAMES = 2
    model_settings.ROUND_MAX_OBJECTS = 1
    model_settings.ROUND_TRAIN_OPTIONS = {
        "correction_clicks": 1,
        "correction_frames": 1,
        "init_cond_frames": 1,
    }
    return model_settings


def _random_init_version(tmp_path: Path) -> ModelVersion:
    from model.build import build_sam2
    from model.checkpoint import save_checkpoint

    torch.manual_seed(0)
    path = tmp_path / "random.pt"
    save_checkpoint(build_sam2("test_tiny"), path)
    version = versions.do_register_checkpoint(None, path, name="random-init", config="test_tiny")
    return versions.do_promote(None, version)


def test_a_round_promotes_a_better_candidate_and_refuses_a_damaged_one(
    tmp_path: Path, round_settings, project, manager, annotator, reviewer, monkeypatch
) -> None:
    from model.training import loop

    videos = verified_procedural_videos(project, annotator, reviewer, 3)
    base = _random_init_version(tmp_path)
    job = rounds.do_start_round(manager, project, steps=STEPS)
    rounds.run_round_job(job.pk)

    job.refresh_from_db()
    assert job.status == Job.Status.SUCCEEDED, job.error
    round_ = Round.objects.get(job=job)
    summary = rounds.round_summary(round_)
    held_out = min((v.pk for v in videos), key=video_hash_fraction)
    assert summary["heldout_videos"] == [held_out]
    assert held_out not in summary["train_videos"]
    assert len(summary["train_videos"]) == 2
    # the loss curve, step by step
    assert [step for step, _ in summary["loss_curve"]] == list(range(1, STEPS + 1))
    # the candidate: stored by sha256, lineage, snapshot, scores
    candidate = ModelVersion.objects.get(pk=summary["candidate_version_id"])
    assert candidate.parent == base
    assert candidate.checkpoint_key == f"models/sha256/{candidate.sha256}.pt"
    assert candidate.training_snapshot["snapshot_id"] == summary["snapshot_id"]
    assert summary["promoted_version_id"] == base.pk
    cand, prom = summary["metrics"]["candidate"], summary["metrics"]["promoted"]
    assert set(cand) == set(prom) == {"jf_1", "jf_3", "jf_5", "clicks_to_075", "jf_mask"}
    # better on the held-out video, so promoted, with the reason recorded
    assert cand["jf_3"] > prom["jf_3"]
    assert summary["promoted"] is True
    assert summary["reason"].startswith("promoted: held-out jf_3")
    candidate.refresh_from_db()
    base.refresh_from_db()
    assert (candidate.status, base.status) == ("promoted", "retired")
    assert candidate.metrics["heldout"]["jf_3"] == cand["jf_3"]
    # the held-out video stays held out for the next rounds
    assert get_round_settings(project).heldout_video_ids == [held_out]

    # round 2 produces a deliberately damaged checkpoint: it is evaluated and never promoted
    monkeypatch.setattr(loop, "train", _damaging_train)
    job2 = rounds.do_start_round(manager, project, steps=3)
    rounds.run_round_job(job2.pk)
    job2.refresh_from_db()
    assert job2.status == Job.Status.SUCCEEDED, job2.error
    second = rounds.round_summary(Round.objects.get(job=job2))
    assert (second["number"], second["promoted_version_id"]) == (2, candidate.pk)
    assert second["heldout_videos"] == [held_out]
    assert second["metrics"]["candidate"]["jf_3"] < second["metrics"]["promoted"]["jf_3"]
    assert second["promoted"] is False
    assert second["reason"].startswith("kept the promoted model")
    damaged = ModelVersion.objects.get(pk=second["candidate_version_id"])
    candidate.refresh_from_db()
    assert (damaged.status, damaged.parent, candidate.status) == (
        "candidate",
        candidate,
        "promoted",
    )


def _damaging_train(model, clips, config, *, on_step=None, should_stop=None, **kw):
    """Training that zeroes every weight (a deliberately damaged checkpoint)."""
    from model.training import loop

    with torch.no_grad():
        for param in model.parameters():
            param.zero_()
    for step in range(1, config.steps + 1):
        if on_step is not None:
            on_step(loop.StepStats(step, 1.0, {}, 0.0, 0.0))
    return loop.TrainResult(config.steps, [1.0] * config.steps, False)


def test_a_round_needs_two_videos_and_runs_one_at_a_time(
    tmp_path: Path, round_settings, project, manager, annotator, reviewer
) -> None:
    verified_procedural_videos(project, annotator, reviewer, 1)
    _random_init_version(tmp_path)
    job = rounds.do_start_round(manager, project, steps=2)
    with pytest.raises(Conflict):
        rounds.do_start_round(manager, project)
    rounds.run_round_job(job.pk)
    job.refresh_from_db()
    assert job.status == Job.Status.FAILED
    assert "at least two videos" in job.error
    assert Round.objects.get(job=job).metrics["status"] == "failed"
    with pytest.raises(PermissionDenied):
        rounds.do_start_round(annotator, project)


def test_a_cancelled_round_stops_between_steps(
    tmp_path: Path, round_settings, project, manager, annotator, reviewer, monkeypatch
) -> None:
    from model.training import loop

    verified_procedural_videos(project, annotator, reviewer, 2)
    _random_init_version(tmp_path)
    job = rounds.do_start_round(manager, project, steps=50)

    def cancelled_midway(model, clips, config, *, on_step=None, should_stop=None, **kw):
        for step in range(1, config.steps + 1):
            if step == 3:
                Job.objects.filter(pk=job.pk).update(cancel_requested=True)
            if should_stop is not None and should_stop():
                return loop.TrainResult(step - 1, [1.0] * (step - 1), True)
        raise AssertionError("should_stop never stopped training")

    monkeypatch.setattr(loop, "train", cancelled_midway)
    rounds.run_round_job(job.pk)
    job.refresh_from_db()
    assert job.status == Job.Status.CANCELLED
    assert "cancelled at step 2" in job.error
    assert not ModelVersion.objects.exclude(name="random-init").exists()


def test_the_split_is_by_video_stable_and_sticky() -> None:
    ids = list(range(1, 41))
    train, held = split_videos(ids, holdout_fraction=0.2)
    assert set(train) | set(held) == set(ids)
    assert not set(train) & set(held)
    assert 2 <= len(held) <= 16
    # more videos never move an old one
    train2, held2 = split_videos([*ids, 41, 42, 43], holdout_fraction=0.2)
    assert set(held) <= set(held2)
    # a video once held out stays held out
    _, held3 = split_videos(ids, holdout_fraction=0.0, sticky=[train[0]])
    assert train[0] in held3
