"""Retraining rounds: a ``train`` job that fine-tunes the promoted model on verified masklets.

A round (DESIGN.md 5.6): snapshot the project's verified masklets, split them by video into
training and held-out clips (:mod:`engine.training.data`), fine-tune a fresh copy of the promoted
model (SAM 2's recipe, :mod:`model.training`), store the result as a candidate
:class:`~engine.models.ModelVersion`, evaluate candidate and promoted model on the held-out clips
with the simulated interactive protocol (:mod:`engine.simulation.protocol`), and promote the
candidate only if its paired per-video difference on ``ROUND_PROMOTION_METRIC`` is positive and
at least ``ROUND_PROMOTION_MARGIN``. The :class:`~engine.models.Round` row records it all:
number, candidate version, phase, time span, loss curve, scores, decision and why.

``ROUND_TRAIN_OPTIONS`` (a dict, optional) overrides further :class:`model.training.config.
TrainConfig` fields, e.g. fewer correction clicks for quick CPU rounds.

One round per project at a time: :func:`do_start_round` refuses (409) while one is queued or
running. The job is fenced like every job (``engine.jobs.lifecycle``): a superseded attempt
writes nothing; a re-run of the same job reuses its round, snapshot and candidate.
"""

from __future__ import annotations

import logging
import math
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from django.conf import settings
from django.db import transaction
from django.db.models import Max, QuerySet
from django.utils import timezone

from engine.accounts import access
from engine.datasets.snapshots import do_create_snapshot, snapshot_video_ids
from engine.errors import Conflict, InvalidInput, Unavailable
from engine.inference import registry
from engine.jobs.lifecycle import (
    JobCancelled,
    JobReporter,
    JobSuperseded,
    do_create_job,
    held_job,
    run_job,
)
from engine.models import DatasetSnapshot, Job, ModelVersion, Project, Round, User
from engine.training import data, versions
from engine.training.triggers import get_round_settings
from engine.videos import storage

if TYPE_CHECKING:
    from engine.simulation.protocol import ModelScores
    from model.sam2_base import Sam2Model

logger = logging.getLogger(__name__)

ACTIVE = (Job.Status.QUEUED, Job.Status.RUNNING)
MAX_STEPS = 1_000_000
SCORE_KEYS = ("jf_1", "jf_3", "jf_5", "clicks_to_075", "jf_mask")


class RoundFailed(InvalidInput):
    """The round cannot run on this project's data (e.g. too few verified videos)."""


def _setting(name: str, default: Any) -> Any:
    return getattr(settings, name, default)


# --- starting and reading ----------------------------------------------------------------------


def active_round_job(project: Project) -> Job | None:
    return Job.objects.filter(project=project, kind=Job.Kind.TRAIN, status__in=ACTIVE).first()


def do_start_round(
    user: User | None, project: Project, *, steps: int | None = None, reason: str = "manual"
) -> Job:
    """Queue a round of ``project`` (its ``train`` job, sent after commit).

    ``user`` None is the system (a trigger, the simulation). Locks the project row, so two
    starts cannot both pass the check.

    Raises:
        PermissionDenied / NotFound: ``user`` does not manage the project.
        InvalidInput: ``steps`` out of range. Conflict: a round of the project is queued or running.
    """
    if user is not None:
        access.access_project_as_manager(user, project.pk)
    with transaction.atomic():
        Project.objects.select_for_update().filter(pk=project.pk).first()
        if active_round_job(project) is not None:
            raise Conflict("a round of this project is already queued or running")
        if steps is None:
            steps = get_round_settings(project).steps
        if not isinstance(steps, int) or isinstance(steps, bool) or not 1 <= steps <= MAX_STEPS:
            raise InvalidInput(f"steps must be an integer from 1 to {MAX_STEPS}")
        return do_create_job(
            Job.Kind.TRAIN,
            args={"steps": steps, "reason": str(reason)[:200]},
            project=project,
            created_by=user,
        )


def rounds_for_project(project: Project) -> QuerySet[Round]:
    return Round.objects.filter(project=project).select_related("job", "model_version")


def round_jobs(project: Project) -> QuerySet[Job]:
    return Job.objects.filter(project=project, kind=Job.Kind.TRAIN)


def round_status(round_: Round) -> str:
    """The round's job status (``succeeded`` / ``failed`` / ...), or what its metrics recorded."""
    if round_.job is not None:
        return str(round_.job.status)
    return str((round_.metrics or {}).get("status", "unknown"))


def round_summary(round_: Round) -> dict[str, Any]:
    """What a round did, JSON-safe: number, candidate and promoted (baseline) version ids,
    whether the candidate was promoted and why, both models' held-out scores
    (``jf_1, jf_3, jf_5, clicks_to_075, jf_mask``), the loss curve ``[[step, loss], ...]`` and
    the seconds it took."""
    metrics = dict(round_.metrics or {})
    return {
        "id": round_.pk,
        "number": round_.number,
        "project_id": round_.project_id,
        "job_id": round_.job_id,
        "status": round_status(round_),
        "phase": round_.phase,
        "candidate_version_id": round_.model_version_id,
        "promoted_version_id": metrics.get("baseline_version_id"),
        "baseline": metrics.get("baseline", ""),
        "promoted": bool(metrics.get("promoted", False)),
        "reason": metrics.get("reason", ""),
        "metrics": {
            "candidate": metrics.get("candidate_scores", {}),
            "promoted": metrics.get("baseline_scores", {}),
        },
        "paired": metrics.get("paired", {}),
        "loss_curve": metrics.get("loss_curve", []),
        "steps": metrics.get("steps"),
        "train_videos": metrics.get("train_videos", []),
        "heldout_videos": metrics.get("heldout_videos", []),
        "snapshot_id": metrics.get("snapshot_id"),
        "error": metrics.get("error", ""),
        "seconds": metrics.get("seconds"),
        "started_at": round_.started_at.isoformat() if round_.started_at else None,
        "ended_at": round_.ended_at.isoformat() if round_.ended_at else None,
    }


# --- the worker side ---------------------------------------------------------------------------


def run_round_job(job_id: int) -> None:
    """Run the round of train job ``job_id`` (claims it; see the module docstring)."""
    run_job(
        job_id,
        _run_round,
        expected=(InvalidInput, Unavailable, Conflict),
        internal_error="the training round failed",
        on_failure=_record_failure,
    )


def _fenced_update(job: Job, round_: Round, **fields: Any) -> None:
    """Write round fields only while this attempt still holds the job."""
    with transaction.atomic():
        if not held_job(job).select_for_update().exists():
            raise JobSuperseded(f"job {job.pk} attempt {job.attempt} is no longer this worker's")
        Round.objects.filter(pk=round_.pk).update(**fields)
        for name, value in fields.items():
            setattr(round_, name, value)


def _round_for_job(job: Job, project: Project) -> Round:
    """The job's round: created on the first attempt, reused (metrics reset) on later ones."""
    with transaction.atomic():
        Project.objects.select_for_update().filter(pk=project.pk).first()
        existing = Round.objects.filter(job=job).first()
        if existing is not None:
            snapshot_id = (existing.metrics or {}).get("snapshot_id")
            existing.metrics = {"status": "running", "snapshot_id": snapshot_id}
            existing.save(update_fields=["metrics"])
            return existing
        number = (Round.objects.filter(project=project).aggregate(n=Max("number"))["n"] or 0) + 1
        return Round.objects.create(
            project=project,
            number=number,
            phase=project.phase,
            job=job,
            metrics={"status": "running"},
        )


def _record_failure(job: Job, message: str) -> None:
    round_ = Round.objects.filter(job=job).first()
    if round_ is not None:
        metrics = {**(round_.metrics or {}), "status": "failed", "error": message[:2000]}
        Round.objects.filter(pk=round_.pk).update(metrics=metrics, ended_at=timezone.now())


def _snapshot(job: Job, round_: Round, project: Project) -> DatasetSnapshot:
    snapshot_id = (round_.metrics or {}).get("snapshot_id")
    snapshot = None
    if isinstance(snapshot_id, int):
        snapshot = DatasetSnapshot.objects.filter(pk=snapshot_id, project=project).first()
    if snapshot is None:
        snapshot = do_create_snapshot(project, name=f"round {round_.number} (job {job.pk})")
    return snapshot


def _split(project: Project, snapshot: DatasetSnapshot) -> tuple[list[int], list[int]]:
    row = get_round_settings(project)
    train_ids, heldout_ids = data.split_videos(
        snapshot_video_ids(snapshot),
        holdout_fraction=float(_setting("ROUND_HOLDOUT_FRACTION", 0.2)),
        sticky=row.heldout_video_ids or [],
    )
    if not train_ids or not heldout_ids:
        raise RoundFailed(
            "a round needs verified masklets on at least two videos (one to train on, one held "
            f"out to evaluate); this project has them on {len(train_ids) + len(heldout_ids)}"
        )
    sticky = sorted(set(row.heldout_video_ids or []) | set(heldout_ids))
    if sticky != sorted(row.heldout_video_ids or []):
        type(row).objects.filter(pk=row.pk).update(heldout_video_ids=sticky)
    return train_ids, heldout_ids


def _base_model(spec: registry.ModelSpec, device: str, folder: Path) -> Sam2Model:
    """A fresh, trainable copy of the spec's weights (never the registry's shared copy)."""
    from model.build import build_sam2
    from model.checkpoint import CheckpointError

    path = Path(spec.location)
    if spec.source == "promoted" and spec.model_version_id is not None:
        version = ModelVersion.objects.get(pk=spec.model_version_id)
        versions.check_stored_checkpoint(version)
        path = folder / "base.pt"
        storage.download_to(spec.location, path)
    try:
        return build_sam2(spec.config, path, device=device, expected_sha256=spec.sha256)
    except CheckpointError as exc:
        raise versions.CorruptCheckpoint(f"{spec.describe()} does not load: {exc}") from None


def _evaluate(
    model: Sam2Model,
    clips: list[data.VideoClip],
    device: str,
    on_progress: Callable[[float], None],
) -> ModelScores:
    from engine.simulation.protocol import EvalConfig, evaluate_model

    model.eval()
    return evaluate_model(
        model,
        [(c.frames, c.masks) for c in clips],
        EvalConfig(),
        device=device,
        on_progress=on_progress,
    )


def _run_round(job: Job, reporter: JobReporter) -> dict[str, Any]:
    from model.checkpoint import save_checkpoint
    from model.training.clips import TrainClip
    from model.training.config import TrainConfig
    from model.training.loop import StepStats, train

    started = time.monotonic()
    if job.project_id is None:
        raise RoundFailed("a round's job must name its project")
    project = Project.objects.get(pk=job.project_id)
    steps = int(job.args.get("steps") or get_round_settings(project).steps)
    round_ = _round_for_job(job, project)
    reporter.progress(0.01, f"round {round_.number}: snapshot of verified masklets", force=True)
    snapshot = _snapshot(job, round_, project)
    train_ids, heldout_ids = _split(project, snapshot)
    spec = registry.resolve_model_spec()
    from model.config import get_config

    max_side = get_config(spec.config).image_size
    max_frames = int(_setting("ROUND_MAX_CLIP_FRAMES", 48))
    train_clips = data.snapshot_clips(snapshot, train_ids, max_frames=max_frames, max_side=max_side)
    eval_limit = int(_setting("ROUND_EVAL_MAX_VIDEOS", 20))
    heldout_clips = data.snapshot_clips(
        snapshot, heldout_ids[:eval_limit], max_frames=max_frames, max_side=max_side
    )
    if not train_clips or not heldout_clips:
        raise RoundFailed("the snapshot has no masks on its training or held-out videos")
    metrics: dict[str, Any] = {
        "status": "running",
        "snapshot_id": snapshot.pk,
        "train_videos": train_ids,
        "heldout_videos": heldout_ids,
        "steps": steps,
        "baseline": spec.describe(),
        "baseline_version_id": spec.model_version_id,
        "loss_curve": [],
    }
    _fenced_update(job, round_, metrics=dict(metrics))
    device = registry.model_device()
    curve: list[list[float]] = []
    last_flush = [time.monotonic()]

    def on_step(stats: StepStats) -> None:
        curve.append([int(stats.step), round(float(stats.loss), 6)])
        reporter.progress(  # stats.step counts from 1
            0.05 + 0.6 * min(1.0, stats.step / steps),
            f"round {round_.number}: step {stats.step}/{steps}, loss {stats.loss:.4f}",
        )
        if time.monotonic() - last_flush[0] >= 1.0:
            last_flush[0] = time.monotonic()
            _fenced_update(job, round_, metrics={**metrics, "loss_curve": list(curve)})

    def should_stop() -> bool:
        return Job.objects.filter(pk=job.pk, cancel_requested=True).exists()

    with tempfile.TemporaryDirectory(prefix=f"round-{job.pk}-") as tmp:
        folder = Path(tmp)
        model = _base_model(spec, device, folder)
        min_frames = min(len(c.frame_indices) for c in train_clips)
        config = TrainConfig(
            steps=steps,
            num_frames=max(1, min(int(_setting("ROUND_NUM_FRAMES", 8)), min_frames)),
            max_objects=int(_setting("ROUND_MAX_OBJECTS", 3)),
            base_lr=float(_setting("ROUND_BASE_LR", 5e-6)),
            vision_lr=float(_setting("ROUND_VISION_LR", 3e-6)),
            seed=int(round_.number),
            bf16=device.startswith("cuda"),  # bf16 autocast is slow on most CPUs
            **dict(_setting("ROUND_TRAIN_OPTIONS", {})),
        )
        clips = [TrainClip(frames=c.frames, masks=c.masks) for c in train_clips]
        reporter.progress(0.05, f"round {round_.number}: training {steps} steps", force=True)
        try:
            result = train(model, clips, config, on_step=on_step, should_stop=should_stop)
        except ValueError as exc:  # clips the recipe cannot train on (e.g. no visible object)
            raise RoundFailed(f"round {round_.number} cannot train on this data: {exc}") from exc
        if result.stopped:
            raise JobCancelled(f"round {round_.number} was cancelled at step {result.steps_done}")
        metrics["loss_curve"] = list(curve)
        _fenced_update(job, round_, metrics=dict(metrics))
        ckpt = folder / "candidate.pt"
        save_checkpoint(model, ckpt)
        candidate = _candidate_version(job, round_, project, spec, ckpt, metrics)
        _fenced_update(job, round_, model_version=candidate)

        reporter.progress(0.65, f"round {round_.number}: evaluating the candidate", force=True)
        cand_scores = _evaluate(
            model, heldout_clips, device, lambda f: reporter.progress(0.65 + 0.15 * f, "evaluating")
        )
        del model
        reporter.progress(0.8, f"round {round_.number}: evaluating the promoted model", force=True)
        baseline_model = registry.load_model(spec, device).model
        base_scores = _evaluate(
            baseline_model,
            heldout_clips,
            device,
            lambda f: reporter.progress(0.8 + 0.15 * f, "evaluating"),
        )
    return _decide(job, round_, candidate, cand_scores, base_scores, metrics, started)


def _candidate_version(
    job: Job,
    round_: Round,
    project: Project,
    spec: registry.ModelSpec,
    ckpt: Path,
    metrics: dict[str, Any],
) -> ModelVersion:
    """Register the trained weights; a re-run of the same job replaces its earlier candidate."""
    name = f"{project.name[:150]} · round {round_.number} · job {job.pk}"
    earlier = ModelVersion.objects.filter(name=name, status=ModelVersion.Status.CANDIDATE).first()
    if earlier is not None:
        earlier.delete()
    parent = (
        ModelVersion.objects.filter(pk=spec.model_version_id).first()
        if spec.model_version_id
        else None
    )
    return versions.do_register_checkpoint(
        None,
        ckpt,
        name=name,
        config=spec.config,
        parent=parent,
        metrics={"round": round_.number, "project_id": project.pk, "final_loss": _final(metrics)},
        training_snapshot={
            "project_id": project.pk,
            "snapshot_id": metrics["snapshot_id"],
            "round": round_.number,
            "job_id": job.pk,
            "train_videos": metrics["train_videos"],
            "heldout_videos": metrics["heldout_videos"],
            "steps": metrics["steps"],
            "base": spec.describe(),
        },
    )


def _final(metrics: dict[str, Any]) -> float | None:
    curve = metrics.get("loss_curve") or []
    return float(curve[-1][1]) if curve else None


def _decide(
    job: Job,
    round_: Round,
    candidate: ModelVersion,
    cand_scores: ModelScores,
    base_scores: ModelScores,
    metrics: dict[str, Any],
    started: float,
) -> dict[str, Any]:
    """Promote the candidate if it beats the promoted model by the margin; record why."""
    from engine.simulation.protocol import paired_difference

    metric = str(_setting("ROUND_PROMOTION_METRIC", "jf_3"))
    margin = float(_setting("ROUND_PROMOTION_MARGIN", 0.0))
    mean_diff, stderr = paired_difference(cand_scores, base_scores, metric=metric)
    better = mean_diff > 0 and mean_diff >= margin
    # one held-out video has no standard error (infinite); JSON has no infinity
    error = f"± {stderr:.4f}" if math.isfinite(stderr) else "(no standard error: one video)"
    verdict = "promoted" if better else "kept the promoted model"
    reason = (
        f"{verdict}: held-out {metric} candidate {cand_scores.summary().get(metric, 0):.4f} vs "
        f"promoted {base_scores.summary().get(metric, 0):.4f}, paired difference "
        f"{mean_diff:+.4f} {error} over {len(cand_scores.per_video)} video(s), "
        f"margin {margin:.4f}"
    )
    metrics.update(
        {
            "status": "succeeded",
            "candidate_scores": _clean(cand_scores.summary()),
            "baseline_scores": _clean(base_scores.summary()),
            "paired": {
                "metric": metric,
                "mean_diff": mean_diff,
                "stderr": stderr if math.isfinite(stderr) else None,
            },
            "promoted": better,
            "reason": reason,
            "seconds": round(time.monotonic() - started, 2),
        }
    )
    with transaction.atomic():
        if not held_job(job).select_for_update().exists():
            raise JobSuperseded(f"job {job.pk} attempt {job.attempt} is no longer this worker's")
        current = versions.promoted_version()
        if better and (current.pk if current else None) != metrics["baseline_version_id"]:
            # someone promoted or rolled back while the round ran: never override their choice
            better = False
            metrics["promoted"] = False
            metrics["reason"] = (
                f"not promoted: the promoted model changed during the round; {reason}"
            )
        ModelVersion.objects.filter(pk=candidate.pk).update(
            metrics={
                **(candidate.metrics or {}),
                "heldout": metrics["candidate_scores"],
                "baseline_heldout": metrics["baseline_scores"],
                "paired": metrics["paired"],
            }
        )
        if better:
            versions.do_promote(None, candidate, reason=f"round {round_.number}: {reason}")
        Round.objects.filter(pk=round_.pk).update(metrics=metrics, ended_at=timezone.now())
    round_.refresh_from_db()
    return round_summary(round_)


def _clean(summary: dict[str, float]) -> dict[str, float]:
    return {k: float(v) for k, v in summary.items()}


def do_cancel_round(user: User, job: Job) -> None:
    """Ask a round's job to stop (checked between training steps)."""
    from engine.jobs.lifecycle import do_request_cancel

    if job.kind != Job.Kind.TRAIN:
        raise InvalidInput("not a training round's job")
    access.access_project_as_manager(user, job.project_id or 0)
    do_request_cancel(user, job)
