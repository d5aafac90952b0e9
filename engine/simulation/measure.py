"""The simulated engine's measurements: the model's held-out scores, a phase batch's Table 1
figures and data quality, the telemetry cross-check, and the videos' ground truth (used by
:mod:`engine.simulation.engine_run`)."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import numpy as np
from django.db.models import Count, Q

from engine.inference import registry
from engine.models import InteractionEvent, Masklet, ModelVersion, Review, Video
from engine.simulation.annotators import AnnotatedObject
from engine.simulation.reviewers import masklet_jf, revision_masks
from engine.simulation.timing import TimingModel, table_row

if TYPE_CHECKING:
    from engine.simulation.engine_run import PhaseBatch


def heldout_scores(videos: list[tuple[np.ndarray, np.ndarray]]) -> dict[str, Any]:
    """The promoted model's scores on the held-out pool (DESIGN.md 7 interactive protocol)."""
    from engine.simulation.protocol import EvalConfig, evaluate_model

    loaded = registry.load_model()
    scores = evaluate_model(loaded.model, videos, EvalConfig(), device=loaded.device)
    version_id = loaded.spec.model_version_id
    name = loaded.spec.location
    if version_id is not None:
        name = (
            ModelVersion.objects.filter(pk=version_id).values_list("name", flat=True).first()
            or name
        )
    return {"model": name, "model_version_id": loaded.spec.model_version_id, **scores.summary()}


def telemetry_check(objects: list[AnnotatedObject]) -> dict[str, Any]:
    """The batch's clicks, clicked frames and edited frames counted from the engine's events,
    next to the simulation's own counts (they must agree)."""
    ids = [o.masklet_id for o in objects]
    events = InteractionEvent.objects.filter(masklet_id__in=ids)
    clicks = events.filter(kind__in=[InteractionEvent.Kind.CLICK, InteractionEvent.Kind.BOX])
    edits = events.filter(
        kind__in=[
            InteractionEvent.Kind.CLICK,
            InteractionEvent.Kind.BOX,
            InteractionEvent.Kind.BRUSH,
            InteractionEvent.Kind.ERASER,
        ]
    )
    clicked = clicks.values("masklet_id", "frame_index").distinct().count()
    edited = edits.values("masklet_id", "frame_index").distinct().count()
    strokes = events.filter(
        kind__in=[InteractionEvent.Kind.BRUSH, InteractionEvent.Kind.ERASER]
    ).count()
    ours = {
        "clicks": sum(o.work.clicks for o in objects),
        "clicked_frames": sum(len(o.work.clicked) for o in objects),
        "edited_frames": sum(len(o.work.edited) for o in objects),
        "strokes": sum(o.work.strokes for o in objects),
    }
    theirs = {
        "clicks": clicks.count(),
        "clicked_frames": clicked,
        "edited_frames": edited,
        "strokes": strokes,
    }
    return {"simulation": ours, "telemetry": theirs, "agree": ours == theirs}


def batch_figures(
    batch: PhaseBatch, truth: Callable[[Video], np.ndarray], timing: TimingModel
) -> dict[str, Any]:
    """Table 1 columns, data quality and verdicts of one phase's batch."""
    row = table_row((o.work for o in batch.objects), timing)
    masklets = Masklet.objects.filter(pk__in=[o.masklet_id for o in batch.objects]).select_related(
        "video", "current_revision"
    )
    by_id = {m.pk: m for m in masklets}
    jfs = []
    for record in batch.objects:
        masklet = by_id[record.masklet_id]
        if masklet.current_revision is not None:
            jfs.append(masklet_jf(revision_masks(masklet), truth(masklet.video)[record.gt_index]))
    statuses = dict(
        Masklet.objects.filter(pk__in=by_id)
        .values_list("status")
        .annotate(n=Count("pk"))
        .values_list("status", "n")
    )
    verdicts = Review.objects.filter(revision__masklet_id__in=by_id).aggregate(
        satisfactory=Count("pk", filter=Q(verdict=Review.Verdict.SATISFACTORY)),
        unsatisfactory=Count("pk", filter=Q(verdict=Review.Verdict.UNSATISFACTORY)),
        reject=Count("pk", filter=Q(verdict=Review.Verdict.REJECT)),
    )
    return {
        "round": batch.round,
        "phase": batch.phase,
        **row.to_json(),
        "data_jf": float(np.mean(jfs)) if jfs else None,
        "fixes": sum(o.fixes for o in batch.objects),
        "statuses": statuses,
        "verdicts": verdicts,
        "review_seconds": sum(r.seconds for r in batch.reviews),
        "telemetry": telemetry_check(batch.objects),
    }


class TruthCache:
    """Ground truth of the simulation's videos, regenerated from each video's metadata once."""

    def __init__(self) -> None:
        self._masks: dict[int, np.ndarray] = {}

    def __call__(self, video: Video) -> np.ndarray:
        from engine.simulation.videos import ground_truth

        if video.pk not in self._masks:
            self._masks[video.pk] = ground_truth(video).masks
        return self._masks[video.pk]
