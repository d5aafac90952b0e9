"""Model-agnostic parts of the auto-masklet job (DESIGN.md 5.4): first-frame mask proposals.

The recipe follows SAM's automatic mask generator (the SAM 2 paper seeds auto masklets with a
32 x 32 grid of point prompts on the first frame, plus crops): prompt one point at a time from a
regular grid, keep masks whose predicted IoU and stability score pass thresholds, drop masks cut by
a crop edge, remove specks and fill holes below an area, then de-duplicate with mask-IoU
non-maximum suppression (NMS) and, optionally, make the survivors non-overlapping. The model is a
callback, ``predict_fn``, so this module needs neither torch nor SAM 2.

Coordinates are pixels, ``(x, y)``; image sizes are ``(H, W)``; crop boxes are
``(x0, y0, x1, y1)`` with exclusive ends.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import cached_property
from typing import Literal, Protocol

import numpy as np
from scipy import ndimage

from engine.masks.rle import Rle, decode_rle, encode_rle, rle_area, rle_bbox, rle_iou_matrix

PredictFn = Callable[[np.ndarray, np.ndarray], tuple["np.ndarray | LazyMasks", np.ndarray]]
"""``(points_xy [N, 2] float32 pixels, labels [N] int32, 1 = positive) -> (masks, iou_preds)``.

``masks`` is ``[N, H, W]`` (or ``[N, M, H, W]`` for M masks per point) of bool, or of float
logits thresholded at ``config.mask_threshold``, or a ``LazyMasks`` of that shape (computed only
for the masks whose predicted IoU passes); ``iou_preds`` is ``[N]`` (or ``[N, M]``).
"""

CropPredictFactory = Callable[["CropBox"], PredictFn]
"""Given a crop box, returns a ``PredictFn`` that runs the model on that crop of the image, taking
points in crop pixel coordinates and returning crop-sized masks."""

_EIGHT_CONNECTED = np.ones((3, 3), dtype=bool)


@dataclass(frozen=True)
class AutoMaskConfig:
    """Thresholds and sampling of first-frame proposals (SAM 2 AMG defaults where they exist).

    Attributes:
        points_per_side: grid of points_per_side**2 prompts on the full image.
        points_per_batch: prompts per ``predict_fn`` call (bounds model memory).
        pred_iou_thresh: minimum predicted IoU (0 disables).
        stability_score_thresh: minimum stability score (0 disables).
        stability_score_offset: logit offset used by the stability score.
        mask_threshold: logit threshold binarising float masks.
        nms_iou_thresh: mask-IoU above which the lower-scored of two proposals is dropped.
        crop_n_layers: extra crop layers; layer i cuts the image into (2**i)**2 overlapping crops.
        crop_overlap_ratio: crop overlap as a fraction of the shorter image side (at layer 1).
        crop_n_points_downscale_factor: points per side divided by this factor**i on layer i.
        crop_edge_tolerance_px: a box this close to a crop edge (not an image edge) is "cut".
        min_region_area: specks and holes smaller than this many pixels are removed (0 = keep).
        min_mask_area: proposals smaller than this after cleanup are dropped.
        non_overlapping: give each pixel to the best-scored proposal that claims it.
        min_kept_fraction: with ``non_overlapping``, drop a proposal left with less than this
            fraction of its own area.
        max_proposals: keep at most this many, best first (None = all).
    """

    points_per_side: int = 32
    points_per_batch: int = 64
    pred_iou_thresh: float = 0.8
    stability_score_thresh: float = 0.95
    stability_score_offset: float = 1.0
    mask_threshold: float = 0.0
    nms_iou_thresh: float = 0.7
    crop_n_layers: int = 0
    crop_overlap_ratio: float = 512 / 1500
    crop_n_points_downscale_factor: int = 1
    crop_edge_tolerance_px: float = 20.0
    min_region_area: int = 0
    min_mask_area: int = 1
    non_overlapping: bool = False
    min_kept_fraction: float = 0.5
    max_proposals: int | None = None

    def __post_init__(self) -> None:
        if self.points_per_side < 1 or self.points_per_batch < 1:
            raise ValueError("points_per_side and points_per_batch must be >= 1")
        if self.crop_n_layers < 0 or self.crop_n_points_downscale_factor < 1:
            raise ValueError("crop_n_layers must be >= 0 and the downscale factor >= 1")
        for name in (
            "pred_iou_thresh",
            "stability_score_thresh",
            "nms_iou_thresh",
            "min_kept_fraction",
            "crop_overlap_ratio",
        ):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ValueError(f"{name} must lie in [0, 1]")
        if self.min_region_area < 0 or self.min_mask_area < 0:
            raise ValueError("areas must be >= 0")


@dataclass(frozen=True)
class CropBox:
    """A crop ``(x0, y0, x1, y1)`` (exclusive ends) of crop layer ``layer`` (0 = full image)."""

    x0: int
    y0: int
    x1: int
    y1: int
    layer: int

    @property
    def hw(self) -> tuple[int, int]:
        return (self.y1 - self.y0, self.x1 - self.x0)

    @property
    def area(self) -> int:
        return (self.y1 - self.y0) * (self.x1 - self.x0)


@dataclass(frozen=True)
class Proposal:
    """One first-frame mask proposal, ready to seed a masklet.

    ``rle`` is the full-image mask; ``bbox`` is COCO ``(x, y, w, h)``; ``point_xy`` the prompt in
    full-image pixels.
    """

    rle: Rle
    area: int
    bbox: tuple[int, int, int, int]
    predicted_iou: float
    stability_score: float
    point_xy: tuple[float, float]
    crop_box: CropBox

    @cached_property
    def mask(self) -> np.ndarray:
        """``[H, W]`` bool."""
        return decode_rle(self.rle)


# ---------------------------------------------------------------------------------------------
# Sampling


def build_point_grid(n_per_side: int) -> np.ndarray:
    """``[n*n, 2]`` float64 (x, y) in [0, 1]: cell centres of an n x n grid, row by row."""
    step = 1.0 / n_per_side
    centres = np.arange(n_per_side) * step + step / 2
    xs, ys = np.meshgrid(centres, centres)
    return np.stack([xs.ravel(), ys.ravel()], axis=1)


def point_grids_per_layer(n_per_side: int, n_layers: int, downscale: int) -> list[np.ndarray]:
    """One normalised grid per crop layer; layer i has ``int(n / downscale**i)`` points a side."""
    return [
        build_point_grid(max(int(n_per_side / downscale**layer), 1))
        for layer in range(n_layers + 1)
    ]


def generate_crop_boxes(
    image_hw: tuple[int, int], n_layers: int, overlap_ratio: float
) -> list[CropBox]:
    """The full image, then for layer i = 1..n a (2**i) x (2**i) tiling with overlap.

    Neighbouring crops of layer i overlap by ``int(overlap_ratio * min(H, W) * 2 / 2**i)`` pixels
    and together cover the image; crops are clipped to the image.
    """
    height, width = image_hw
    boxes = [CropBox(0, 0, width, height, 0)]
    for layer in range(1, n_layers + 1):
        per_side = 2**layer
        overlap = int(overlap_ratio * min(height, width) * (2 / per_side))
        crop_w = math.ceil((overlap * (per_side - 1) + width) / per_side)
        crop_h = math.ceil((overlap * (per_side - 1) + height) / per_side)
        # Column by column, as SAM orders them (the order breaks NMS ties between equal crops).
        for col in range(per_side):
            for row in range(per_side):
                x0 = (crop_w - overlap) * col
                y0 = (crop_h - overlap) * row
                boxes.append(
                    CropBox(x0, y0, min(x0 + crop_w, width), min(y0 + crop_h, height), layer)
                )
    return boxes


# ---------------------------------------------------------------------------------------------
# Scores and cleanup


def stability_score(logits: np.ndarray, mask_threshold: float, offset: float) -> np.ndarray:
    """IoU between the masks thresholded at ``threshold + offset`` and ``threshold - offset``.

    Args:
        logits: ``[N, H, W]`` float mask logits.

    Returns:
        ``[N]`` float64 in [0, 1]. An empty loose mask scores 1 (SAM's code divides 0 by 0 there);
        such a mask is empty and dropped by the area filter anyway.
    """
    tight = np.count_nonzero(logits > mask_threshold + offset, axis=(-2, -1))
    loose = np.count_nonzero(logits > mask_threshold - offset, axis=(-2, -1))
    # The tight mask lies inside the loose one, so their IoU is the ratio of the two areas.
    return np.where(loose > 0, tight / np.maximum(loose, 1), 1.0)


def remove_small_regions(
    mask: np.ndarray, area_thresh: int, mode: Literal["holes", "islands"]
) -> tuple[np.ndarray, bool]:
    """Fill holes or remove islands smaller than ``area_thresh`` pixels (8-connected).

    ``islands`` keeps the largest island even when every island is small.

    Args:
        mask: ``[H, W]`` bool.

    Returns:
        ``(cleaned [H, W] bool, whether anything changed)``.
    """
    if area_thresh <= 0:
        return mask, False
    fill_holes = mode == "holes"
    target = ~mask if fill_holes else mask
    labels, n_regions = ndimage.label(target, structure=_EIGHT_CONNECTED)
    if n_regions == 0:
        return mask, False
    sizes = np.bincount(labels.ravel(), minlength=n_regions + 1)[1:]
    small = np.flatnonzero(sizes < area_thresh) + 1
    if small.size == 0:
        return mask, False
    if not fill_holes and small.size == n_regions:
        return labels == int(np.argmax(sizes)) + 1, True
    is_small = np.zeros(n_regions + 1, dtype=bool)
    is_small[small] = True
    in_small_region = is_small[labels]  # a table look-up: np.isin sorts every pixel
    if fill_holes:
        return mask | in_small_region, True
    return mask & ~in_small_region, True


def clean_mask(mask: np.ndarray, min_region_area: int) -> np.ndarray:
    """Fill small holes, then remove small specks (SAM's post-processing order).

    The regions are labelled inside the mask's box grown by one pixel, not on the whole image
    (a proposal usually covers a small part of a frame); where that window cannot decide a
    background region's size, the whole image is labelled. The result is the same either way.
    """
    if min_region_area <= 0:
        return mask
    box = mask_box_xyxy(mask)
    if box is None:
        return _clean_whole(mask, min_region_area)
    height, width = mask.shape
    window = (
        slice(max(box[1] - 1, 0), min(box[3] + 1, height)),
        slice(max(box[0] - 1, 0), min(box[2] + 1, width)),
    )
    filled = _fill_small_holes_in_window(mask[window], min_region_area)
    if filled is None:
        return _clean_whole(mask, min_region_area)
    # all foreground lies in the window, so its islands are labelled exactly there
    cleaned, _ = remove_small_regions(filled, min_region_area, "islands")
    out = np.zeros_like(mask, dtype=bool)
    out[window] = cleaned
    return out


def _clean_whole(mask: np.ndarray, min_region_area: int) -> np.ndarray:
    filled, _ = remove_small_regions(mask, min_region_area, "holes")
    cleaned, _ = remove_small_regions(filled, min_region_area, "islands")
    return cleaned


def _fill_small_holes_in_window(window: np.ndarray, area_thresh: int) -> np.ndarray | None:
    """Holes smaller than ``area_thresh`` filled in a window around all of the foreground.

    A background region away from the window's border is whole inside it; one touching the border
    may continue outside, which only matters if its part inside is small: then None (undecided).
    """
    labels, n_regions = ndimage.label(~window, structure=_EIGHT_CONNECTED)
    if n_regions == 0:
        return window
    sizes = np.bincount(labels.ravel(), minlength=n_regions + 1)
    on_border = np.unique(np.concatenate([labels[0], labels[-1], labels[:, 0], labels[:, -1]]))
    on_border = on_border[on_border > 0]
    if np.any(sizes[on_border] < area_thresh):
        return None
    is_small = sizes < area_thresh
    is_small[0] = False
    if not is_small.any():
        return window
    return window | is_small[labels]


def mask_box_xyxy(mask: np.ndarray) -> tuple[int, int, int, int] | None:
    """Tight box ``(x0, y0, x1, y1)``, exclusive ends, of an ``[H, W]`` mask; None when empty."""
    rows = np.flatnonzero(mask.any(axis=1))
    if rows.size == 0:
        return None
    cols = np.flatnonzero(mask.any(axis=0))
    return (int(cols[0]), int(rows[0]), int(cols[-1]) + 1, int(rows[-1]) + 1)


def is_cut_by_crop_edge(
    box: tuple[int, int, int, int],
    crop: CropBox,
    image_hw: tuple[int, int],
    tolerance: float,
) -> bool:
    """Whether a box touches a side of the crop that is not also a side of the image."""
    crop_sides = (crop.x0, crop.y0, crop.x1, crop.y1)
    image_sides = (0, 0, image_hw[1], image_hw[0])
    return any(
        abs(b - c) <= tolerance and abs(b - i) > tolerance
        for b, c, i in zip(box, crop_sides, image_sides)
    )


def mask_nms(rles: Sequence[Rle], scores: Sequence[float], iou_thresh: float) -> list[int]:
    """Greedy mask-IoU NMS: indices kept, best score first.

    A candidate is dropped when its mask IoU with an already kept one exceeds ``iou_thresh``.
    Ties in score keep the earlier index.
    """
    order = sorted(range(len(rles)), key=lambda i: (-scores[i], i))
    if not rles:
        return []
    areas = np.array([rle_area(r) for r in rles], dtype=np.float64)
    boxes = np.array([rle_bbox(r) for r in rles], dtype=np.float64).reshape(-1, 4)
    x0, y0 = boxes[:, 0], boxes[:, 1]
    x1, y1 = x0 + boxes[:, 2], y0 + boxes[:, 3]
    kept: list[int] = []
    for i in order:
        if kept:
            k = np.array(kept)
            # The masks' intersection is at most that of their boxes (and of either area), and
            # IoU grows with the intersection: only pairs whose bound passes need the RLE IoU.
            box_inter = np.clip(np.minimum(x1[i], x1[k]) - np.maximum(x0[i], x0[k]), 0, None)
            box_inter *= np.clip(np.minimum(y1[i], y1[k]) - np.maximum(y0[i], y0[k]), 0, None)
            inter = np.minimum(box_inter, np.minimum(areas[i], areas[k]))
            union = areas[i] + areas[k] - inter
            bound = np.where(union > 0, inter / np.maximum(union, 1e-9), 0.0)
            close = k[bound > iou_thresh - 1e-9]  # margin for rounding of the bound
            if close.size:
                ious = rle_iou_matrix([rles[i]], [rles[j] for j in close])
                if float(ious.max()) > iou_thresh:
                    continue
        kept.append(i)
    return kept


def make_non_overlapping(
    masks: Sequence[np.ndarray], scores: Sequence[float], min_kept_fraction: float
) -> list[np.ndarray | None]:
    """Give each pixel to the best-scored mask claiming it.

    Args:
        masks: ``[H, W]`` bool each.
        scores: one per mask.
        min_kept_fraction: a mask keeping less than this fraction of its area becomes None.

    Returns:
        The trimmed masks in input order (None for dropped ones).
    """
    out: list[np.ndarray | None] = [None] * len(masks)
    if not masks:
        return out
    taken = np.zeros_like(masks[0], dtype=bool)
    for i in sorted(range(len(masks)), key=lambda i: (-scores[i], i)):
        own = masks[i]
        area = int(np.count_nonzero(own))
        trimmed = own & ~taken
        if area == 0 or np.count_nonzero(trimmed) < min_kept_fraction * area:
            continue
        out[i] = trimmed
        taken |= trimmed
    return out


# ---------------------------------------------------------------------------------------------
# Driver


class LazyMasks(Protocol):
    """Masks that a ``PredictFn`` computes only when asked (e.g. upsampled from low-res logits).

    ``shape`` is ``(N, M, H, W)`` (M masks per point); ``take(indices)`` returns the masks at
    those flat indices (``point * M + m``) as ``[K, H, W]`` float logits.
    """

    @property
    def shape(self) -> tuple[int, ...]: ...

    def take(self, indices: np.ndarray) -> np.ndarray: ...


def _normalise_prediction(
    masks: np.ndarray | LazyMasks, iou_preds: np.ndarray, n_points: int
) -> tuple[Callable[[np.ndarray], np.ndarray], tuple[int, int], np.ndarray, np.ndarray]:
    """-> (take(flat indices) -> masks [K, h, w], (h, w), iou [K], point index [K]), with
    multi-mask outputs flattened."""
    iou_preds = np.asarray(iou_preds, dtype=np.float64)
    shape = tuple(masks.shape)
    if len(shape) == 3:
        point_index = np.arange(n_points)
    elif len(shape) == 4:
        point_index = np.repeat(np.arange(n_points), shape[1])
        iou_preds = iou_preds.reshape(-1)
    else:
        raise ValueError(f"predict_fn returned masks of shape {shape}")
    count = shape[0] * (shape[1] if len(shape) == 4 else 1)
    if count != point_index.size or iou_preds.shape != (point_index.size,):
        raise ValueError(
            f"predict_fn returned {count} masks and {iou_preds.shape} IoUs for {n_points} points"
        )
    if isinstance(masks, np.ndarray):
        flat = masks.reshape(-1, *shape[-2:])
        return (lambda idx: flat[idx]), shape[-2:], iou_preds, point_index
    return masks.take, shape[-2:], iou_preds, point_index


def _proposals_in_crop(
    predict_fn: PredictFn,
    crop: CropBox,
    grid: np.ndarray,
    image_hw: tuple[int, int],
    config: AutoMaskConfig,
) -> list[Proposal]:
    crop_h, crop_w = crop.hw
    points = (grid * np.array([crop_w, crop_h])).astype(np.float32)  # crop pixels
    found: list[Proposal] = []
    for start in range(0, len(points), config.points_per_batch):
        batch = points[start : start + config.points_per_batch]
        labels = np.ones(len(batch), dtype=np.int32)
        take, mask_hw, all_ious, all_points = _normalise_prediction(
            *predict_fn(batch, labels), len(batch)
        )
        if tuple(mask_hw) != (crop_h, crop_w):
            raise ValueError(f"predict_fn masks are {tuple(mask_hw)}, crop is {crop.hw}")
        # only masks that pass the IoU filter are looked at (lazy masks are upsampled then)
        selected = np.flatnonzero(all_ious >= config.pred_iou_thresh)
        raw_masks = take(selected)
        raw_ious, point_index = all_ious[selected], all_points[selected]
        if raw_masks.dtype == np.bool_:
            # Binary masks carry no margin to measure: stability cannot be judged, so it passes.
            stability = np.ones(len(raw_masks))
            binary = raw_masks
        else:
            stability = stability_score(
                raw_masks, config.mask_threshold, config.stability_score_offset
            )
            binary = raw_masks > config.mask_threshold
        keep = stability >= config.stability_score_thresh
        for k in np.flatnonzero(keep):
            full = np.zeros(image_hw, dtype=bool)
            full[crop.y0 : crop.y1, crop.x0 : crop.x1] = binary[k]
            full = clean_mask(full, config.min_region_area)
            area = int(np.count_nonzero(full))
            box = mask_box_xyxy(full)
            if box is None or area < max(config.min_mask_area, 1):
                continue
            if is_cut_by_crop_edge(box, crop, image_hw, config.crop_edge_tolerance_px):
                continue
            x, y = batch[point_index[k]]
            found.append(
                Proposal(
                    rle=encode_rle(full),
                    area=area,
                    bbox=(box[0], box[1], box[2] - box[0], box[3] - box[1]),
                    predicted_iou=float(raw_ious[k]),
                    stability_score=float(stability[k]),
                    point_xy=(float(x) + crop.x0, float(y) + crop.y0),
                    crop_box=crop,
                )
            )
    kept = mask_nms([p.rle for p in found], [p.predicted_iou for p in found], config.nms_iou_thresh)
    return [found[i] for i in kept]


def generate_first_frame_proposals(
    predict_fn: PredictFn,
    image_hw: tuple[int, int],
    config: AutoMaskConfig | None = None,
    crop_predict_factory: CropPredictFactory | None = None,
) -> list[Proposal]:
    """Mask proposals for one image (the first frame of a video), best first.

    Args:
        predict_fn: the model on the full image (see ``PredictFn``).
        image_hw: ``(H, W)`` of the image.
        config: thresholds and sampling; defaults to ``AutoMaskConfig()``.
        crop_predict_factory: required when ``config.crop_n_layers > 0``.

    Returns:
        Proposals sorted by predicted IoU (then stability), after NMS within each crop, NMS across
        crops (preferring masks from smaller crops, as SAM does, since they saw more detail),
        and optionally the non-overlap constraint.
    """
    config = config or AutoMaskConfig()
    if config.crop_n_layers > 0 and crop_predict_factory is None:
        raise ValueError("crop_n_layers > 0 needs a crop_predict_factory")
    grids = point_grids_per_layer(
        config.points_per_side, config.crop_n_layers, config.crop_n_points_downscale_factor
    )
    crops = generate_crop_boxes(image_hw, config.crop_n_layers, config.crop_overlap_ratio)
    proposals: list[Proposal] = []
    for crop in crops:
        fn = predict_fn if crop.layer == 0 else crop_predict_factory(crop)  # type: ignore[misc]
        proposals.extend(_proposals_in_crop(fn, crop, grids[crop.layer], image_hw, config))
    if len(crops) > 1:
        # Across crops, duplicates resolve toward the smaller crop.
        kept = mask_nms(
            [p.rle for p in proposals],
            [1.0 / p.crop_box.area for p in proposals],
            config.nms_iou_thresh,
        )
        proposals = [proposals[i] for i in kept]
    proposals.sort(key=lambda p: (-p.predicted_iou, -p.stability_score))
    if config.non_overlapping:
        trimmed = make_non_overlapping(
            [p.mask for p in proposals],
            [p.predicted_iou for p in proposals],
            config.min_kept_fraction,
        )
        proposals = [
            _with_mask(p, m)
            for p, m in zip(proposals, trimmed)
            if m is not None and np.count_nonzero(m) >= max(config.min_mask_area, 1)
        ]
    if config.max_proposals is not None:
        proposals = proposals[: config.max_proposals]
    return proposals


def _with_mask(proposal: Proposal, mask: np.ndarray) -> Proposal:
    box = mask_box_xyxy(mask)
    assert box is not None
    return Proposal(
        rle=encode_rle(mask),
        area=int(np.count_nonzero(mask)),
        bbox=(box[0], box[1], box[2] - box[0], box[3] - box[1]),
        predicted_iou=proposal.predicted_iou,
        stability_score=proposal.stability_score,
        point_xy=proposal.point_xy,
        crop_box=proposal.crop_box,
    )
