"""J (region IoU), F (DAVIS boundary F-measure) and J&F, defined once (DESIGN.md section 7).

Same numbers as the DAVIS 2017 toolkit and SA-V's ``sav_evaluator.py``:

* J per frame is ``|P & G| / |P | G|``, 1 when both masks are empty.
* F per frame: 1-px boundary maps as DAVIS ``seg2bmap`` draws them, each dilated by a disk of radius
  ``ceil(0.008 * sqrt(H**2 + W**2))`` (disk = offsets with ``dx**2 + dy**2 <= r**2``); precision is
  the share of predicted boundary pixels inside the dilated GT boundary, recall the reverse,
  F = 2PR / (P + R), with DAVIS's cases for empty boundaries.
* Per masklet: mean over the GT's annotated frames, optionally skipping the first and last ones
  (SA-V's default). Per dataset: means over all objects of all videos, J&F = (J + F) / 2.

Scores are fractions in [0, 1]; the SA-V evaluator prints them multiplied by 100.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

import numpy as np
from scipy import ndimage

DAVIS_BOUNDARY_TOLERANCE = 0.008


def region_iou(pred: np.ndarray, gt: np.ndarray) -> float:
    """J of one frame.

    Args:
        pred: ``[H, W]`` bool predicted mask.
        gt: ``[H, W]`` bool ground-truth mask.
    """
    _check_same_shape(pred, gt)
    union = int(np.count_nonzero(pred | gt))
    if union == 0:
        return 1.0
    return int(np.count_nonzero(pred & gt)) / union


def boundary_map(mask: np.ndarray) -> np.ndarray:
    """1-px boundary of a mask, as DAVIS ``seg2bmap`` draws it: ``[H, W]`` bool.

    A pixel is on the boundary when it differs from its east, south or south-east neighbour.
    On the last row only the east neighbour counts, on the last column only the south one,
    and the bottom-right pixel is never a boundary. Pixels beyond the image are background, so a
    mask touching the right or bottom edge has no boundary drawn along that edge, while one
    touching the left or top edge does (DAVIS's asymmetry, kept for identical numbers).
    """
    seg = mask.astype(bool, copy=False)
    east = np.zeros_like(seg)
    south = np.zeros_like(seg)
    south_east = np.zeros_like(seg)
    east[:, :-1] = seg[:, 1:]
    south[:-1, :] = seg[1:, :]
    south_east[:-1, :-1] = seg[1:, 1:]
    boundary = (seg ^ east) | (seg ^ south) | (seg ^ south_east)
    boundary[-1, :] = seg[-1, :] ^ east[-1, :]
    boundary[:, -1] = seg[:, -1] ^ south[:, -1]
    boundary[-1, -1] = False
    return boundary


def boundary_tolerance_px(height: int, width: int, ratio: float = DAVIS_BOUNDARY_TOLERANCE) -> int:
    """Dilation radius in pixels: ``ceil(ratio * image diagonal)`` (a ratio >= 1 is already px)."""
    if ratio >= 1:
        return int(ratio)
    return math.ceil(ratio * math.hypot(height, width))


def disk_footprint(radius: int) -> np.ndarray:
    """``[2r+1, 2r+1]`` bool disk: offsets with ``dx**2 + dy**2 <= r**2`` (skimage ``disk``)."""
    offsets = np.arange(-radius, radius + 1)
    return (offsets[:, None] ** 2 + offsets[None, :] ** 2) <= radius**2


def _dilate(boundary: np.ndarray, footprint: np.ndarray) -> np.ndarray:
    if not boundary.any():
        return boundary.copy()
    # Only the boundary's bounding box plus the radius can change: dilate that window alone.
    radius = footprint.shape[0] // 2
    rows = np.flatnonzero(boundary.any(axis=1))
    cols = np.flatnonzero(boundary.any(axis=0))
    y0, y1 = max(rows[0] - radius, 0), min(rows[-1] + radius + 1, boundary.shape[0])
    x0, x1 = max(cols[0] - radius, 0), min(cols[-1] + radius + 1, boundary.shape[1])
    out = np.zeros_like(boundary)
    out[y0:y1, x0:x1] = ndimage.binary_dilation(boundary[y0:y1, x0:x1], structure=footprint)
    return out


@dataclass(frozen=True)
class BoundaryScore:
    """Boundary precision, recall and F-measure of one frame (fractions)."""

    precision: float
    recall: float
    f: float


def boundary_scores(
    pred: np.ndarray, gt: np.ndarray, tolerance: float = DAVIS_BOUNDARY_TOLERANCE
) -> BoundaryScore:
    """DAVIS boundary precision / recall / F of one frame.

    Args:
        pred: ``[H, W]`` bool predicted mask.
        gt: ``[H, W]`` bool ground-truth mask.
        tolerance: fraction of the image diagonal (or pixels when >= 1).
    """
    _check_same_shape(pred, gt)
    radius = boundary_tolerance_px(gt.shape[0], gt.shape[1], tolerance)
    footprint = disk_footprint(radius)
    pred_boundary = boundary_map(pred)
    gt_boundary = boundary_map(gt)
    n_pred = int(np.count_nonzero(pred_boundary))
    n_gt = int(np.count_nonzero(gt_boundary))
    # DAVIS's special cases: an empty boundary on one side only is a total miss on the other
    # side's measure; both empty is perfect.
    if n_pred == 0 and n_gt == 0:
        precision, recall = 1.0, 1.0
    elif n_pred == 0:
        precision, recall = 1.0, 0.0
    elif n_gt == 0:
        precision, recall = 0.0, 1.0
    else:
        pred_hits = np.count_nonzero(pred_boundary & _dilate(gt_boundary, footprint))
        gt_hits = np.count_nonzero(gt_boundary & _dilate(pred_boundary, footprint))
        precision = pred_hits / n_pred
        recall = gt_hits / n_gt
    f = 0.0 if precision + recall == 0 else 2 * precision * recall / (precision + recall)
    return BoundaryScore(precision=precision, recall=recall, f=f)


def boundary_f_measure(
    pred: np.ndarray, gt: np.ndarray, tolerance: float = DAVIS_BOUNDARY_TOLERANCE
) -> float:
    """F of one frame (see ``boundary_scores``)."""
    return boundary_scores(pred, gt, tolerance).f


@dataclass(frozen=True)
class FrameScore:
    """J and F of one object on one frame."""

    j: float
    f: float


def evaluate_frame(
    pred: np.ndarray | None,
    gt: np.ndarray | None,
    tolerance: float = DAVIS_BOUNDARY_TOLERANCE,
) -> FrameScore:
    """J and F of one frame; ``None`` on either side means an empty mask of the other's shape."""
    if pred is None and gt is None:
        return FrameScore(j=1.0, f=1.0)
    if pred is None:
        assert gt is not None
        pred = np.zeros_like(gt, dtype=bool)
    if gt is None:
        gt = np.zeros_like(pred, dtype=bool)
    pred = pred.astype(bool, copy=False)
    gt = gt.astype(bool, copy=False)
    return FrameScore(j=region_iou(pred, gt), f=boundary_f_measure(pred, gt, tolerance))


@dataclass(frozen=True)
class MaskletScore:
    """Mean J and F of one object over its evaluated frames."""

    object_id: str
    j: float
    f: float
    n_frames: int
    frame_indices: tuple[int, ...]

    @property
    def j_and_f(self) -> float:
        return (self.j + self.f) / 2


def evaluated_frame_indices(gt_frames: Iterable[int], skip_first_and_last: bool) -> list[int]:
    """Sorted GT frame indices that enter the mean (SA-V skips the first and last by default)."""
    frames = sorted(gt_frames)
    if skip_first_and_last:
        frames = frames[1:-1]
    return frames


def evaluate_masklet(
    pred: Mapping[int, np.ndarray | None],
    gt: Mapping[int, np.ndarray | None],
    *,
    object_id: str = "",
    skip_first_and_last: bool = True,
    tolerance: float = DAVIS_BOUNDARY_TOLERANCE,
) -> MaskletScore:
    """Mean J and F of one object over the frames that have ground truth.

    Args:
        pred: frame index -> ``[H, W]`` bool mask (``None`` = empty). Must cover every evaluated
            GT frame, as SA-V's evaluator demands.
        gt: frame index -> ``[H, W]`` bool mask (``None`` = empty); its keys are the annotated
            frames.
        skip_first_and_last: drop the first and last annotated frames (SA-V's semi-supervised
            protocol: the first one holds the prompt).

    Raises:
        ValueError: no frame is left to evaluate, or a prediction is missing.
    """
    frames = evaluated_frame_indices(gt.keys(), skip_first_and_last)
    if not frames:
        raise ValueError(
            f"object {object_id!r}: no frame left to evaluate ({len(gt)} annotated frames, "
            f"skip_first_and_last={skip_first_and_last})"
        )
    missing = [t for t in frames if t not in pred]
    if missing:
        raise ValueError(f"object {object_id!r}: no prediction for frames {missing[:10]}")
    scores = [evaluate_frame(pred[t], gt[t], tolerance) for t in frames]
    return MaskletScore(
        object_id=object_id,
        j=float(np.mean([s.j for s in scores])),
        f=float(np.mean([s.f for s in scores])),
        n_frames=len(frames),
        frame_indices=tuple(frames),
    )


@dataclass(frozen=True)
class DatasetScore:
    """Global J, F and J&F: means over all objects of all videos (not per video first)."""

    j: float
    f: float
    n_objects: int

    @property
    def j_and_f(self) -> float:
        return (self.j + self.f) / 2


def aggregate_scores(masklet_scores: Iterable[MaskletScore]) -> DatasetScore:
    """Dataset-level J, F, J&F from per-object scores (every object weighs the same)."""
    scores = list(masklet_scores)
    if not scores:
        raise ValueError("no masklet scores to aggregate")
    return DatasetScore(
        j=float(np.mean([s.j for s in scores])),
        f=float(np.mean([s.f for s in scores])),
        n_objects=len(scores),
    )


def _check_same_shape(pred: np.ndarray, gt: np.ndarray) -> None:
    if pred.shape != gt.shape or pred.ndim != 2:
        raise ValueError(f"masks must be 2-D and of the same shape: {pred.shape} vs {gt.shape}")
