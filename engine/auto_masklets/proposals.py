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
from collections import deque
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from functools import cached_property
from typing import Literal, Protocol

import numpy as np

from engine.auto_masklets.cleanup import (
    clean_mask,
    is_cut_by_crop_edge,
    make_non_overlapping,
    mask_box_xyxy,
    mask_nms,
    stability_score,
    surely_cut_by_crop_edge,
)
from engine.auto_masklets.runs import cleaned_in_image
from engine.masks.rle import Rle, decode_rle, encode_rle

PredictFn = Callable[[np.ndarray, np.ndarray], tuple["np.ndarray | LazyMasks", np.ndarray]]
"""``(points_xy [N, 2] float32 pixels, labels [N] int32, 1 = positive) -> (masks, iou_preds)``.

``masks`` is ``[N, H, W]`` (or ``[N, M, H, W]`` for M masks per point) of bool, or of float
logits thresholded at ``config.mask_threshold``, or a ``LazyMasks`` of that shape (computed only
for the masks whose predicted IoU passes); ``iou_preds`` is ``[N]`` (or ``[N, M]``).
"""

CropPredictFactory = Callable[["CropBox"], PredictFn]
"""Given a crop box, returns a ``PredictFn`` that runs the model on that crop of the image, taking
points in crop pixel coordinates and returning crop-sized masks."""


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


Postprocess = Literal["batched", "per_mask"]
"""How kept masks are cleaned and measured: all of a prompt batch at once, as column runs that
give areas, boxes and RLEs without the masks' pixels (``runs.cleaned_in_image``; masks surely cut
by a crop edge dropped before cleanup), or one by one (``clean_mask``, the earlier path, kept as
the reference). Both give the same proposals."""

_Candidate = tuple[int, Rle, int, tuple[int, int, int, int]]
"""(index in the batch's kept masks, full-image RLE, area, box x0 y0 x1 y1)."""


def _candidates_per_mask(
    binary: np.ndarray, crop: CropBox, image_hw: tuple[int, int], config: AutoMaskConfig
) -> list[_Candidate]:
    """Each ``[K, h, w]`` crop mask pasted into the image, cleaned, measured and filtered."""
    found: list[_Candidate] = []
    for k in range(len(binary)):
        full = np.zeros(image_hw, dtype=bool)
        full[crop.y0 : crop.y1, crop.x0 : crop.x1] = binary[k]
        full = clean_mask(full, config.min_region_area)
        area = int(np.count_nonzero(full))
        box = mask_box_xyxy(full)
        if box is None or area < max(config.min_mask_area, 1):
            continue
        if is_cut_by_crop_edge(box, crop, image_hw, config.crop_edge_tolerance_px):
            continue
        found.append((k, encode_rle(full), area, box))
    return found


def _candidates_batched(
    binary: np.ndarray, crop: CropBox, image_hw: tuple[int, int], config: AutoMaskConfig
) -> list[_Candidate]:
    """``_candidates_per_mask`` with the cleanup, areas, boxes and RLEs of all masks at once."""
    tolerance = config.crop_edge_tolerance_px
    todo = [
        k
        for k in range(len(binary))
        if not surely_cut_by_crop_edge(binary[k], crop, image_hw, tolerance, config.min_region_area)
    ]
    if not todo:
        return []
    runs = cleaned_in_image(binary[todo], crop.x0, crop.y0, image_hw, config.min_region_area)
    areas, boxes = runs.areas(), runs.boxes()
    keep: list[tuple[int, tuple[int, int, int, int]]] = []
    for i in np.flatnonzero(areas >= max(config.min_mask_area, 1)):
        x0, y0, x1, y1 = (int(v) for v in boxes[i])
        if not is_cut_by_crop_edge((x0, y0, x1, y1), crop, image_hw, tolerance):
            keep.append((int(i), (x0, y0, x1, y1)))
    rles = runs.rles([i for i, _ in keep])
    return [(todo[i], rle, int(areas[i]), box) for (i, box), rle in zip(keep, rles, strict=True)]


_CANDIDATES = {"batched": _candidates_batched, "per_mask": _candidates_per_mask}


def _batch_proposals(
    raw_masks: np.ndarray,
    raw_ious: np.ndarray,
    point_index: np.ndarray,
    batch: np.ndarray,
    crop: CropBox,
    image_hw: tuple[int, int],
    config: AutoMaskConfig,
    candidates: Callable[..., list[_Candidate]],
) -> list[Proposal]:
    """Proposals from one batch's masks that passed the IoU filter: stability, cleanup, area,
    crop-edge filter (numpy only)."""
    if raw_masks.dtype == np.bool_:
        # Binary masks carry no margin to measure: stability cannot be judged, so it passes.
        stability = np.ones(len(raw_masks))
        binary = raw_masks
    else:
        stability = stability_score(raw_masks, config.mask_threshold, config.stability_score_offset)
        binary = raw_masks > config.mask_threshold
    kept = np.flatnonzero(stability >= config.stability_score_thresh)
    found = []
    for i, rle, area, box in candidates(binary[kept], crop, image_hw, config):
        k = kept[i]
        x, y = batch[point_index[k]]
        found.append(
            Proposal(
                rle=rle,
                area=area,
                bbox=(box[0], box[1], box[2] - box[0], box[3] - box[1]),
                predicted_iou=float(raw_ious[k]),
                stability_score=float(stability[k]),
                point_xy=(float(x) + crop.x0, float(y) + crop.y0),
                crop_box=crop,
            )
        )
    return found


def _proposals_in_crop(
    predict_fn: PredictFn,
    crop: CropBox,
    grid: np.ndarray,
    image_hw: tuple[int, int],
    config: AutoMaskConfig,
    postprocess: Postprocess = "batched",
) -> list[Proposal]:
    crop_h, crop_w = crop.hw
    points = (grid * np.array([crop_w, crop_h])).astype(np.float32)  # crop pixels
    candidates = _CANDIDATES[postprocess]
    found: list[Proposal] = []
    # A batch's post-processing (numpy, one core) runs in a thread while the model decodes the
    # next batch (torch), so both cores of a CPU worker work; batches are collected in order, so
    # the proposals are the same, and at most two batches' masks are held at once.
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="automask-post") as post:
        pending: deque[Future[list[Proposal]]] = deque()
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
            work = (take(selected), all_ious[selected], all_points[selected], batch)
            pending.append(post.submit(_batch_proposals, *work, crop, image_hw, config, candidates))
            while len(pending) > 1:
                found += pending.popleft().result()
        while pending:
            found += pending.popleft().result()
    kept_ids = mask_nms(
        [p.rle for p in found], [p.predicted_iou for p in found], config.nms_iou_thresh
    )
    return [found[i] for i in kept_ids]


def generate_first_frame_proposals(
    predict_fn: PredictFn,
    image_hw: tuple[int, int],
    config: AutoMaskConfig | None = None,
    crop_predict_factory: CropPredictFactory | None = None,
    postprocess: Postprocess = "batched",
) -> list[Proposal]:
    """Mask proposals for one image (the first frame of a video), best first.

    Args:
        predict_fn: the model on the full image (see ``PredictFn``).
        image_hw: ``(H, W)`` of the image.
        config: thresholds and sampling; defaults to ``AutoMaskConfig()``.
        crop_predict_factory: required when ``config.crop_n_layers > 0``.
        postprocess: see ``Postprocess`` (the same proposals either way).

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
        proposals.extend(
            _proposals_in_crop(fn, crop, grids[crop.layer], image_hw, config, postprocess)
        )
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
