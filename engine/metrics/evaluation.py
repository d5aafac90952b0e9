"""J&F of one set of masklets against another (ground truth), per frame, masklet and dataset.

Ground truth is usually imported (``engine.datasets.importing``) into a project of its own or into
the same videos; predictions are masklets made by annotators or models. Pairs are matched by
``(video name, object id)`` (:func:`pair_project_masklets`) or given explicitly.

Frame rules (``engine.metrics.scores``, DESIGN.md section 7): only frames the ground truth
annotates are scored, the first and last of them skipped unless asked otherwise; a prediction with
no entry on such a frame, or a ``None`` mask, counts as an empty mask (an absent object), so a
missing prediction scores 0 where the object is visible instead of aborting the evaluation.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from engine.masklets.revisions import revision_frames
from engine.masks.rle import Rle, decode_rle_or_empty
from engine.metrics.scores import (
    DAVIS_BOUNDARY_TOLERANCE,
    DatasetScore,
    FrameScore,
    MaskletScore,
    aggregate_scores,
    evaluate_frame,
    evaluated_frame_indices,
)
from engine.models import Masklet, Project

RleFrames = Mapping[int, Rle | None]
"""Frame index -> COCO RLE (``None`` = absent) of one masklet."""


@dataclass(frozen=True)
class MaskletEvaluation:
    """Per-frame and mean scores of one predicted masklet against its ground truth."""

    key: str
    frames: dict[int, FrameScore]
    score: MaskletScore


@dataclass(frozen=True)
class EvaluationReport:
    masklets: list[MaskletEvaluation]
    dataset: DatasetScore

    def as_dict(self) -> dict[str, Any]:
        return {
            "j": self.dataset.j,
            "f": self.dataset.f,
            "j_and_f": self.dataset.j_and_f,
            "n_objects": self.dataset.n_objects,
            "masklets": {
                m.key: {
                    "j": m.score.j,
                    "f": m.score.f,
                    "j_and_f": m.score.j_and_f,
                    "n_frames": m.score.n_frames,
                }
                for m in self.masklets
            },
        }


def evaluate_rle_masklet(
    pred: RleFrames,
    gt: RleFrames,
    *,
    key: str = "",
    skip_first_and_last: bool = True,
    tolerance: float = DAVIS_BOUNDARY_TOLERANCE,
) -> MaskletEvaluation:
    """Score one masklet, decoding one frame pair at a time.

    Raises:
        ValueError: the ground truth has no frame left to evaluate or carries no mask size.
    """
    frames = evaluated_frame_indices(gt.keys(), skip_first_and_last)
    if not frames:
        raise ValueError(f"masklet {key!r}: no ground-truth frame left to evaluate")
    size = next((r["size"] for r in (*gt.values(), *pred.values()) if r is not None), None)
    if size is None:
        # Both sides empty everywhere: J = F = 1 on every frame.
        scores = {t: FrameScore(1.0, 1.0) for t in frames}
    else:
        height, width = int(size[0]), int(size[1])
        scores = {
            t: evaluate_frame(
                decode_rle_or_empty(pred.get(t), height, width),
                decode_rle_or_empty(gt[t], height, width),
                tolerance,
            )
            for t in frames
        }
    n = len(frames)
    score = MaskletScore(
        object_id=key,
        j=sum(s.j for s in scores.values()) / n,
        f=sum(s.f for s in scores.values()) / n,
        n_frames=n,
        frame_indices=tuple(frames),
    )
    return MaskletEvaluation(key=key, frames=scores, score=score)


def evaluate_pairs(
    pairs: Iterable[tuple[str, RleFrames, RleFrames]],
    *,
    skip_first_and_last: bool = True,
) -> EvaluationReport:
    """Score ``(key, prediction, ground truth)`` triples; dataset means weigh objects equally."""
    results = [
        evaluate_rle_masklet(pred, gt, key=key, skip_first_and_last=skip_first_and_last)
        for key, pred, gt in pairs
    ]
    return EvaluationReport(results, aggregate_scores(r.score for r in results))


def _current_rles(masklet: Masklet) -> dict[int, Rle | None]:
    if masklet.current_revision is None:
        return {}
    return {t: f.rle for t, f in revision_frames(masklet.current_revision).items()}


def pair_project_masklets(
    predicted: Project,
    ground_truth: Project,
    *,
    kinds: Sequence[str] | None = None,
    gt_statuses: Sequence[str] | None = None,
) -> list[tuple[str, Masklet | None, Masklet]]:
    """Match every ground-truth masklet with the prediction of the same video name and object id.

    A ground-truth masklet with no prediction is paired with ``None`` (scored as empty).
    """
    gt = Masklet.objects.filter(video__project=ground_truth).select_related("video")
    if kinds:
        gt = gt.filter(kind__in=list(kinds))
    if gt_statuses:
        gt = gt.filter(status__in=list(gt_statuses))
    pred = {
        (m.video.name, m.object_id): m
        for m in Masklet.objects.filter(video__project=predicted).select_related("video")
    }
    return [
        (f"{m.video.name}#{m.object_id}", pred.get((m.video.name, m.object_id)), m)
        for m in gt.order_by("video__name", "object_id")
    ]


def evaluate_projects(
    predicted: Project,
    ground_truth: Project,
    *,
    kinds: Sequence[str] | None = None,
    skip_first_and_last: bool = True,
) -> EvaluationReport:
    """J&F of a project's masklets against another project's ground-truth masklets."""

    def triples() -> Iterable[tuple[str, RleFrames, RleFrames]]:
        for key, pred, gt in pair_project_masklets(predicted, ground_truth, kinds=kinds):
            yield key, (_current_rles(pred) if pred is not None else {}), _current_rles(gt)

    return evaluate_pairs(triples(), skip_first_and_last=skip_first_and_last)
