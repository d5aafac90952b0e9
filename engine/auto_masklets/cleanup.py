"""Scores and cleanup of mask proposals (DESIGN.md 5.4): stability score, hole and speck removal,
boxes, crop-edge test, mask NMS and the non-overlap constraint.

Coordinates are pixels, ``(x, y)``; boxes ``(x0, y0, x1, y1)`` have exclusive ends.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TYPE_CHECKING, Literal

import numpy as np
from scipy import ndimage

from engine.masks.rle import Rle, rle_area, rle_bbox, rle_iou_matrix

if TYPE_CHECKING:
    from engine.auto_masklets.proposals import CropBox

_EIGHT_CONNECTED = np.ones((3, 3), dtype=bool)


def stability_score(logits: np.ndarray, mask_threshold: float, offset: float) -> np.ndarray:
    """IoU between the masks thresholded at ``threshold + offset`` and ``threshold - offset``.

    Args:
        logits: ``[N, H, W]`` float mask logits.

    Returns:
        ``[N]`` float64 in [0, 1]. An empty loose mask scores 1 (SAM's code divides 0 by 0 there);
        such a mask is empty and dropped by the area filter anyway.
    """
    flat = logits.reshape(-1, *logits.shape[-2:])

    def above(threshold: float) -> np.ndarray:
        # mask by mask: count_nonzero over a whole array is ~3x faster than along axes
        counts = (np.count_nonzero(m > threshold) for m in flat)
        return np.fromiter(counts, np.int64, len(flat)).reshape(logits.shape[:-2])

    tight, loose = above(mask_threshold + offset), above(mask_threshold - offset)
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


def _has_run(mask: np.ndarray, length: int, axis: int) -> bool:
    """Whether ``mask`` ([h, w] bool) holds ``length`` consecutive True pixels along ``axis``."""
    if mask.shape[axis] < length or mask.size == 0:
        return False
    lines = mask if axis == 0 else mask.T
    sums = np.zeros((lines.shape[0] + 1, lines.shape[1]), dtype=np.int32)
    np.cumsum(lines, axis=0, out=sums[1:])
    return bool((sums[length:] - sums[:-length] == length).any())


def surely_cut_by_crop_edge(
    mask: np.ndarray,
    crop: CropBox,
    image_hw: tuple[int, int],
    tolerance: float,
    min_region_area: int,
) -> bool:
    """Whether a crop's mask will be dropped as cut by a crop edge, whatever its cleanup does.

    True only when ``is_cut_by_crop_edge`` is certain to hold for the box of
    ``clean_mask(mask pasted into the image, min_region_area)``: a run of at least
    ``min_region_area`` foreground pixels (a region cleanup keeps: it removes smaller regions
    only, and filling holes only adds pixels) reaches within ``tolerance`` of a crop side that is
    not an image side, and no cleanup can put pixels outside the crop (the background outside
    it is one region of at least ``min_region_area`` pixels). False means "not sure".

    Args:
        mask: ``[h, w]`` bool in crop pixels (``crop.hw``).
    """
    height, width = image_hw
    h, w = crop.hw
    area = max(min_region_area, 1)
    if tolerance < 0 or min(h, w) < area:
        return False
    if (crop.x0 == 0 and crop.x1 == width) or (crop.y0 == 0 and crop.y1 == height):
        return False  # the outside may be two separate regions
    near = math.floor(tolerance)  # local pixel offsets within the tolerance of a side
    far_x, far_y = math.ceil(w - 1 - tolerance), math.ceil(h - 1 - tolerance)
    checks = []
    if crop.x0 > tolerance:  # left side: a box there cannot be within tolerance of x = 0
        checks += [(mask[:, : near + area], 1), (mask[:, : near + 1], 0)]
    if width - crop.x1 > tolerance:
        checks += [(mask[:, max(far_x - area + 1, 0) :], 1), (mask[:, max(far_x, 0) :], 0)]
    if crop.y0 > tolerance:
        checks += [(mask[: near + area], 0), (mask[: near + 1], 1)]
    if height - crop.y1 > tolerance:
        checks += [(mask[max(far_y - area + 1, 0) :], 0), (mask[max(far_y, 0) :], 1)]
    return any(_has_run(part, area, axis) for part, axis in checks)
