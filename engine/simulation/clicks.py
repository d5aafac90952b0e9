"""The simulated annotator's clicks (DESIGN.md section 7).

The first click goes to the object's centre: the pixel farthest from the mask's boundary. Each
next click goes to the centre of the largest error region between the current mask and the ground
truth: positive in a missed region (false negative), negative in a spurious one (false positive).
"Largest" and "centre" are measured as RITM and SAM 2 measure them (``sam2_utils.
sample_one_point_from_error_center``): the error pixel with the largest Euclidean distance to the
boundary of its region, the image border counting as boundary; on a tie the click is negative.
Ties between pixels go to the first in raster order, so clicks are deterministic.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy import ndimage

from engine.metrics.scores import region_iou


@dataclass(frozen=True)
class Click:
    """A click at pixel ``(x, y)`` (column, row) of the frame; positive adds, negative removes."""

    x: float
    y: float
    positive: bool


def _depth(region: np.ndarray) -> np.ndarray:
    """``(H, W)`` float distance of each region pixel to the region's boundary (0 outside),
    the image border counting as boundary."""
    padded = np.pad(region, 1, mode="constant", constant_values=False)
    return np.asarray(ndimage.distance_transform_edt(padded)[1:-1, 1:-1], dtype=np.float64)


def _deepest(region: np.ndarray) -> tuple[float, int, int]:
    """(depth, row, col) of the deepest pixel of ``region``; depth 0 when it is empty."""
    depth = _depth(region)
    flat = int(np.argmax(depth))
    row, col = divmod(flat, region.shape[1])
    return float(depth[row, col]), row, col


def _check(mask: np.ndarray, name: str) -> np.ndarray:
    if mask.ndim != 2:
        raise ValueError(f"{name} must be a 2-D (H, W) mask, got shape {mask.shape}")
    return mask.astype(bool, copy=False)


def first_click(gt: np.ndarray) -> Click:
    """The positive click at the centre of ``gt`` ``(H, W)`` bool.

    Raises:
        ValueError: ``gt`` is empty (there is nothing to click on).
    """
    gt = _check(gt, "gt")
    if not gt.any():
        raise ValueError("the ground-truth mask is empty: no object to click on")
    _, row, col = _deepest(gt)
    return Click(x=float(col), y=float(row), positive=True)


def next_click(pred: np.ndarray, gt: np.ndarray) -> Click | None:
    """The correcting click for prediction ``pred`` against ``gt`` (both ``(H, W)`` bool).

    Returns None when ``pred`` equals ``gt``.
    """
    pred, gt = _check(pred, "pred"), _check(gt, "gt")
    if pred.shape != gt.shape:
        raise ValueError(f"pred {pred.shape} and gt {gt.shape} differ in shape")
    missed = gt & ~pred
    spurious = pred & ~gt
    if not missed.any() and not spurious.any():
        return None
    fn_depth, fn_row, fn_col = _deepest(missed)
    fp_depth, fp_row, fp_col = _deepest(spurious)
    if fn_depth > fp_depth:
        return Click(x=float(fn_col), y=float(fn_row), positive=True)
    return Click(x=float(fp_col), y=float(fp_row), positive=False)


def mask_iou(pred: np.ndarray, gt: np.ndarray) -> float:
    """Region IoU of two ``(H, W)`` masks; two empty masks score 1.0."""
    return region_iou(_check(pred, "pred"), _check(gt, "gt"))


def clicks_to_arrays(clicks: Sequence[Click]) -> tuple[np.ndarray, np.ndarray]:
    """Clicks as model prompts: points ``(N, 2)`` float32 ``(x, y)``, labels ``(N,)`` int32
    (1 positive, 0 negative)."""
    points = np.array([[c.x, c.y] for c in clicks], dtype=np.float32).reshape(-1, 2)
    labels = np.array([1 if c.positive else 0 for c in clicks], dtype=np.int32)
    return points, labels
