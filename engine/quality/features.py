"""Quality features of one masklet revision, from its masks and the model's per-frame scores.

Everything here is pure numpy (no Django): :func:`masklet_features` takes the annotated frames
of a masklet, in frame order, and returns

- ``features``: a fixed, named vector (:data:`FEATURE_NAMES`) the estimator learns from. A value
  that cannot be measured (no stability scores stored, a single annotated frame) is ``nan``;
  the estimator imputes it.
- ``suspicion``: one score in [0, 1] per annotated frame: how likely that frame is to need a
  correction (a sudden drop of the motion-compensated IoU with its neighbours, an area spike,
  the object lost inside its track, extra fragments, a low model score, a jittery step, an
  outline that left the image's edges while the other frames follow them).
- ``jitter``: the temporal-jitter measure (also one of the features), defined in
  :func:`temporal_jitter`.

Inputs: the masks, the model's per-frame stability scores where the revision stores them (auto
masklets do; manual propagation stores none yet), and optionally some decoded frames, for the
edge-alignment features of engine.quality.edges.

Masks are reduced by striding to at most :data:`WORK_SIDE` pixels a side first: the features are
ratios (IoU, relative area, size-normalised motion), so they barely change, and a 1080p video of
300 frames stays cheap.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np
from scipy import ndimage

from engine.quality.edges import boundary_alignment

WORK_SIDE = 256
#: A frame whose suspicion reaches this is marked on the timelines.
MARK_THRESHOLD = 0.35
MAX_MARKS = 12

FEATURE_NAMES: tuple[str, ...] = (
    "frames",  # log(1 + annotated frames)
    "present_fraction",
    "lost_fraction",  # absent frames inside the span between first and last present frame
    "flicker_rate",  # present <-> absent changes per annotated frame
    "iou_mean",  # IoU of consecutive present frames
    "iou_min",
    "iou_low_fraction",  # consecutive pairs with IoU < 0.5
    "motion_iou_mean",  # IoU after moving the mask by the previous step's displacement
    "motion_iou_min",
    "motion_iou_drop",  # median minus minimum motion IoU: one sudden break (a swap)
    "area_change_mean",  # |a_t - a_{t-1}| / max(a_t, a_{t-1})
    "area_change_max",
    "area_cv",  # coefficient of variation of the area over present frames
    "area_fraction",  # mean area / frame area
    "fragments_mean",  # connected components per present frame
    "fragments_max",
    "holes_mean",  # background components enclosed by the mask, per present frame
    "roughness_mean",  # boundary length / circumference of a disk of the same area
    "roughness_change",  # mean |roughness_t - roughness_{t-1}|
    "jitter",  # see temporal_jitter
    "centroid_jitter",
    "interior_loss_rate",  # disappearances away from the frame border, per present frame
    "spur_fraction",  # mean share of the area outside the largest fragment
    "fragments_change",  # mean |fragments_t - fragments_{t-1}|
    "edge_alignment_mean",  # engine.quality.edges, where frames are given (nan otherwise)
    "edge_alignment_min",
    "edge_alignment_drop",  # median alignment minus the 10th percentile
    "stability_mean",  # model stability scores where stored (nan otherwise)
    "stability_min",
    "suspicion_max",
    "suspicion_mean",
)


@dataclass(frozen=True)
class FrameStats:
    """Per present frame, at work resolution: area (pixels), bounding box, centroid, shape."""

    area: float
    box: tuple[float, float, float, float]  # x0, y0, x1, y1
    centroid: tuple[float, float]  # x, y
    fragments: int
    holes: int
    roughness: float
    spur: float  # share of the area outside the largest fragment
    touches_border: bool


@dataclass
class MaskletFeatures:
    """The features of one masklet revision (see the module docstring)."""

    features: dict[str, float]
    frames: list[int]
    suspicion: list[float]
    jitter: float
    marks: list[int] = field(default_factory=list)

    def vector(self) -> np.ndarray:
        """(F,) float64 in :data:`FEATURE_NAMES` order, nan where not measurable."""
        return np.array([self.features[name] for name in FEATURE_NAMES], dtype=np.float64)

    def frame_suspicion(self) -> dict[int, float]:
        return dict(zip(self.frames, self.suspicion, strict=True))


def _reduce(mask: np.ndarray) -> np.ndarray:
    step = max(1, math.ceil(max(mask.shape) / WORK_SIDE))
    return np.ascontiguousarray(mask[::step, ::step], dtype=bool)


def frame_stats(mask: np.ndarray) -> FrameStats | None:
    """Shape statistics of one (H, W) bool mask; None when it is empty."""
    area = float(mask.sum())
    if area == 0:
        return None
    ys, xs = np.nonzero(mask)
    labels, fragments = ndimage.label(mask)
    sizes = np.bincount(labels.ravel())[1:]
    background, count = ndimage.label(~mask)
    border = np.unique(
        np.concatenate([background[0], background[-1], background[:, 0], background[:, -1]])
    )
    holes = count - int(np.count_nonzero(border))
    padded = np.pad(mask, 1)
    inner = (
        padded[1:-1, 1:-1] & padded[:-2, 1:-1] & padded[2:, 1:-1] & padded[1:-1, :-2]
    ) & padded[1:-1, 2:]
    perimeter = area - float(inner.sum())
    disk = 2.0 * math.sqrt(math.pi * area)
    return FrameStats(
        area=area,
        box=(float(xs.min()), float(ys.min()), float(xs.max() + 1), float(ys.max() + 1)),
        centroid=(float(xs.mean()), float(ys.mean())),
        fragments=int(fragments),
        holes=max(0, holes),
        roughness=perimeter / max(disk, 1.0),
        spur=1.0 - float(sizes.max()) / area,
        touches_border=bool(
            mask[0].any() or mask[-1].any() or mask[:, 0].any() or mask[:, -1].any()
        ),
    )


def iou(a: np.ndarray, b: np.ndarray) -> float:
    union = np.count_nonzero(a | b)
    return 1.0 if union == 0 else np.count_nonzero(a & b) / union


def shifted(mask: np.ndarray, dy: int, dx: int) -> np.ndarray:
    """``mask`` moved by (dy, dx) pixels, zero-filled."""
    out = np.zeros_like(mask)
    h, w = mask.shape
    if abs(dy) >= h or abs(dx) >= w:
        return out
    src_y = slice(max(0, -dy), h - max(0, dy))
    dst_y = slice(max(0, dy), h - max(0, -dy))
    src_x = slice(max(0, -dx), w - max(0, dx))
    dst_x = slice(max(0, dx), w - max(0, -dx))
    out[dst_y, dst_x] = mask[src_y, src_x]
    return out


def motion_ious(work: list[np.ndarray], stats: list[FrameStats | None]) -> list[float | None]:
    """(T,) IoU of frame t+1 with frame t moved by the step before it (constant velocity; at
    a track's start, by the step after): smooth fast motion scores high, a jump or an identity
    switch low. None where t or t+1 is absent; the last entry is None."""
    out: list[float | None] = []
    for t in range(len(work) - 1):
        a, b = stats[t], stats[t + 1]
        if a is None or b is None:
            out.append(None)
            continue
        # the step before predicts this one; at a track's start, the step after does
        before = stats[t - 1] if t > 0 else None
        after = stats[t + 2] if t + 2 < len(stats) else None
        dy = dx = 0
        if before is not None:
            dx = int(round(a.centroid[0] - before.centroid[0]))
            dy = int(round(a.centroid[1] - before.centroid[1]))
        elif after is not None:
            dx = int(round(after.centroid[0] - b.centroid[0]))
            dy = int(round(after.centroid[1] - b.centroid[1]))
        out.append(iou(shifted(work[t], dy, dx), work[t + 1]))
    out.append(None)
    return out


def _second_difference_rms(track: np.ndarray) -> np.ndarray:
    """(T, D) track -> (T,) |x_t - (x_{t-1} + x_{t+1}) / 2| per step, 0 at both ends."""
    out = np.zeros(len(track))
    if len(track) >= 3:
        residual = track[1:-1] - 0.5 * (track[:-2] + track[2:])
        out[1:-1] = np.sqrt((residual**2).mean(axis=1))
    return out


def temporal_jitter(stats: list[FrameStats | None]) -> tuple[float, float, np.ndarray]:
    """The temporal jitter of a masklet: ``(jitter, centroid_jitter, per-frame residual)``.

    Definition: over each run of consecutive present annotated frames, the track of the
    bounding box's four edges ``b_t = (x0, y0, x1, y1)`` is compared with a smoothed track,
    the midpoint of its neighbours ``(b_{t-1} + b_{t+1}) / 2`` (a 3-tap smoother: zero for a
    still object and for motion at constant velocity, small for smooth acceleration). The
    high-frequency part is the residual ``r_t = b_t - (b_{t-1} + b_{t+1}) / 2``; the jitter
    is ``sqrt(mean_t mean_edges r_t^2)`` divided by the object's size ``sqrt(mean area)``,
    so it is unitless and comparable across resolutions. ``centroid_jitter`` is the same with
    the centroid instead of the box edges (translation only; the box also catches boundaries
    that wobble). Fewer than 3 consecutive present frames: 0 (nothing to measure).
    The per-frame residual (same normalisation) feeds the frame suspicion.
    """
    residual = np.zeros(len(stats))
    sums = [0.0, 0.0]
    count = 0
    areas = [s.area for s in stats if s is not None]
    if not areas:
        return 0.0, 0.0, residual
    scale = math.sqrt(float(np.mean(areas)))
    start = 0
    while start < len(stats):
        if stats[start] is None:
            start += 1
            continue
        end = start
        while end < len(stats) and stats[end] is not None:
            end += 1
        run = [s for s in stats[start:end] if s is not None]
        if len(run) >= 3:
            boxes = _second_difference_rms(np.array([s.box for s in run]))
            centres = _second_difference_rms(np.array([s.centroid for s in run]))
            residual[start:end] = boxes / scale
            sums[0] += float((boxes[1:-1] ** 2).sum())
            sums[1] += float((centres[1:-1] ** 2).sum())
            count += len(run) - 2
        start = end
    if count == 0:
        return 0.0, 0.0, residual
    return math.sqrt(sums[0] / count) / scale, math.sqrt(sums[1] / count) / scale, residual


def _nan_stat(values: list[float], fn: str) -> float:
    if not values:
        return math.nan
    return float(getattr(np, fn)(values))


def _frame_suspicion(
    masks: list[np.ndarray],
    stats: list[FrameStats | None],
    pair_iou: list[float | None],
    jitter_residual: np.ndarray,
    stability: list[float | None],
    alignment: list[float],
) -> np.ndarray:
    """(T,) suspicion per annotated frame in [0, 1] (see :func:`masklet_features`)."""
    n = len(masks)
    present = np.array([s is not None for s in stats])
    suspicion = np.zeros(n)
    if n == 0:
        return suspicion
    ious = [v for v in pair_iou if v is not None]
    typical = float(np.median(ious)) if ious else 1.0
    areas = np.array([s.area if s is not None else 0.0 for s in stats])
    fragments = [s.fragments for s in stats if s is not None]
    usual_fragments = float(np.median(fragments)) if fragments else 1.0
    first = int(np.argmax(present)) if present.any() else n
    last = n - 1 - int(np.argmax(present[::-1])) if present.any() else -1
    measured = [a for a in alignment if not math.isnan(a)]
    usual_alignment = float(np.median(measured)) if measured else math.nan
    for t in range(n):
        scores = []
        # An IoU drop with both neighbours is the frame itself; with one, maybe its neighbour.
        around = [v for v in (pair_iou[t - 1] if t > 0 else None, pair_iou[t]) if v is not None]
        if around:
            drop = typical - max(around) if len(around) == 2 else typical - around[0]
            scores.append(np.clip(drop / 0.5, 0.0, 1.0) * (1.0 if len(around) == 2 else 0.6))
        if not present[t] and first < t < last:
            scores.append(1.0)  # lost inside its own track
        if present[t]:
            window = [areas[k] for k in range(max(0, t - 2), min(n, t + 3)) if k != t]
            window = [a for a in window if a > 0]
            if window:
                spike = abs(math.log(areas[t] / float(np.median(window))))
                scores.append(float(np.clip(spike / math.log(2.0), 0.0, 1.0)))
            s = stats[t]
            assert s is not None
            if s.fragments > usual_fragments:
                scores.append(min(1.0, 0.25 * (s.fragments - usual_fragments)))
        if not math.isnan(alignment[t]) and not math.isnan(usual_alignment):
            off = usual_alignment - alignment[t]
            scores.append(float(np.clip(off / 0.6, 0.0, 1.0)))
        if stability[t] is not None:
            score = float(stability[t] or 0.0)
            scores.append(float(np.clip((0.95 - score) / 0.3, 0.0, 1.0)))
        scores.append(float(np.clip(jitter_residual[t] / 0.15, 0.0, 1.0)) * 0.8)
        suspicion[t] = max(scores) if scores else 0.0
    return suspicion


def masklet_features(
    masks: Mapping[int, np.ndarray | None],
    stability: Mapping[int, float | None] | None = None,
    images: Mapping[int, np.ndarray] | None = None,
) -> MaskletFeatures:
    """Features of a masklet from its annotated frames.

    Args:
        masks: frame index -> (H, W) bool mask, or None when the object is absent on that
            annotated frame. Frames not in the mapping were never annotated.
        stability: frame index -> the model's stability score in [0, 1] where stored.
        images: frame index -> the (H, W, 3) uint8 frame (any subset of the frames; the
            masks' size): enables the edge-alignment features.
    """
    frames = sorted(masks)
    stability = stability or {}
    reduced = []
    for i in frames:
        mask = masks[i]
        reduced.append(None if mask is None else _reduce(np.asarray(mask, dtype=bool)))
    shape = next((m.shape for m in reduced if m is not None), (1, 1))
    work = [m if m is not None else np.zeros(shape, dtype=bool) for m in reduced]
    stats = [frame_stats(m) for m in work]
    present = [s is not None for s in stats]
    n = len(frames)

    pair_iou: list[float | None] = []
    area_change: list[float] = []
    for t in range(n - 1):
        if present[t] and present[t + 1]:
            a, b = stats[t], stats[t + 1]
            assert a is not None
            assert b is not None
            pair_iou.append(iou(work[t], work[t + 1]))
            area_change.append(abs(a.area - b.area) / max(a.area, b.area))
        else:
            pair_iou.append(None)
    pair_iou.append(None)  # pair_iou[t] is (t, t + 1); the last frame has no successor

    jitter, centroid_jitter, residual = temporal_jitter(stats)
    scores = [stability.get(i) for i in frames]
    alignment = _alignments(frames, masks, images or {})
    moved = motion_ious(work, stats)
    suspicion = _frame_suspicion(work, stats, moved, residual, scores, alignment)

    live = [s for s in stats if s is not None]
    ious = [v for v in pair_iou if v is not None]
    moved_ious = [v for v in moved if v is not None]
    areas = [s.area for s in live]
    first = present.index(True) if any(present) else n
    last = n - 1 - present[::-1].index(True) if any(present) else -1
    span = max(0, last - first + 1)
    lost = sum(1 for t in range(first, last + 1) if not present[t]) if span else 0
    changes = sum(1 for t in range(n - 1) if present[t] != present[t + 1])
    roughness = [s.roughness for s in live]
    found_scores = [float(v) for v in scores if v is not None]
    aligned = [a for a in alignment if not math.isnan(a)]
    # The object vanishing from the middle of the frame (not leaving by an edge) is suspect.
    interior_losses = 0
    for before, after in zip(stats, stats[1:], strict=False):
        if before is not None and after is None and not before.touches_border:
            interior_losses += 1
    fragment_counts = [float(s.fragments) for s in live]
    features = {
        "frames": math.log1p(n),
        "present_fraction": len(live) / n if n else 0.0,
        "lost_fraction": lost / span if span else 0.0,
        "flicker_rate": changes / n if n else 0.0,
        "iou_mean": _nan_stat(ious, "mean"),
        "iou_min": _nan_stat(ious, "min"),
        "iou_low_fraction": float(np.mean([v < 0.5 for v in ious])) if ious else math.nan,
        "motion_iou_mean": _nan_stat(moved_ious, "mean"),
        "motion_iou_min": _nan_stat(moved_ious, "min"),
        "motion_iou_drop": float(np.median(moved_ious) - np.min(moved_ious))
        if moved_ious
        else math.nan,
        "area_change_mean": _nan_stat(area_change, "mean"),
        "area_change_max": _nan_stat(area_change, "max"),
        "area_cv": float(np.std(areas) / np.mean(areas)) if areas else math.nan,
        "area_fraction": float(np.mean(areas)) / (shape[0] * shape[1]) if areas else 0.0,
        "fragments_mean": _nan_stat([float(s.fragments) for s in live], "mean"),
        "fragments_max": _nan_stat([float(s.fragments) for s in live], "max"),
        "holes_mean": _nan_stat([float(s.holes) for s in live], "mean"),
        "roughness_mean": _nan_stat(roughness, "mean"),
        "roughness_change": _nan_stat(list(np.abs(np.diff(roughness))), "mean")
        if len(roughness) > 1
        else math.nan,
        "jitter": jitter,
        "centroid_jitter": centroid_jitter,
        "interior_loss_rate": interior_losses / len(live) if live else 0.0,
        "spur_fraction": _nan_stat([s.spur for s in live], "mean"),
        "fragments_change": _nan_stat(list(np.abs(np.diff(fragment_counts))), "mean")
        if len(fragment_counts) > 1
        else math.nan,
        "edge_alignment_mean": _nan_stat(aligned, "mean"),
        "edge_alignment_min": _nan_stat(aligned, "min"),
        "edge_alignment_drop": float(np.median(aligned) - np.percentile(aligned, 10))
        if aligned
        else math.nan,
        "stability_mean": _nan_stat(found_scores, "mean"),
        "stability_min": _nan_stat(found_scores, "min"),
        "suspicion_max": float(suspicion.max()) if n else 0.0,
        "suspicion_mean": float(suspicion.mean()) if n else 0.0,
    }
    return MaskletFeatures(
        features=features,
        frames=frames,
        suspicion=[round(float(s), 4) for s in suspicion],
        jitter=jitter,
        marks=suspect_frames(frames, suspicion),
    )


def _alignments(
    frames: list[int], masks: Mapping[int, np.ndarray | None], images: Mapping[int, np.ndarray]
) -> list[float]:
    """(T,) edge alignment per annotated frame (nan: no image, or no mask)."""
    out = []
    for i in frames:
        mask, image = masks[i], images.get(i)
        if mask is None or image is None:
            out.append(math.nan)
            continue
        step = max(1, math.ceil(max(mask.shape) / WORK_SIDE))
        out.append(boundary_alignment(_reduce(np.asarray(mask, dtype=bool)), image[::step, ::step]))
    return out


def suspect_frames(frames: list[int], suspicion: np.ndarray | list[float]) -> list[int]:
    """The frames to mark on the timelines: suspicion >= :data:`MARK_THRESHOLD`, the
    :data:`MAX_MARKS` highest, in frame order."""
    ranked = sorted(
        (i for i in range(len(frames)) if suspicion[i] >= MARK_THRESHOLD),
        key=lambda i: -float(suspicion[i]),
    )[:MAX_MARKS]
    return sorted(frames[i] for i in ranked)
