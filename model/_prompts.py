"""Prompt validation and the errors that predictors raise on bad input.

All input errors subclass `PromptError` (a `ValueError`) so a web layer can map them to 4xx at once.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

ArrayLike = Sequence[float] | Sequence[Sequence[float]] | np.ndarray | torch.Tensor


class PromptError(ValueError):
    """Base class: the caller's input is invalid; nothing was changed."""


class InvalidPromptError(PromptError):
    """Malformed prompt: NaN/inf, out-of-frame coordinates, bad shapes, bad labels, no prompt."""


class UnknownObjectError(PromptError):
    """The object id has no prompts in this session."""


class FrameIndexError(PromptError):
    """The frame index is outside the video."""


class NoPromptsError(PromptError):
    """Propagation was asked for but an object (or the session) has no prompts."""


class PredictorStateError(RuntimeError):
    """A predictor method was called out of order (e.g. predict before set_image)."""


def _as_float_array(value: ArrayLike, name: str) -> np.ndarray:
    if isinstance(value, torch.Tensor):
        value = value.detach().cpu().numpy()
    try:
        arr = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise InvalidPromptError(f"{name} must be numeric: {exc}") from exc
    if not np.all(np.isfinite(arr)):
        raise InvalidPromptError(f"{name} contains NaN or infinite values")
    return arr


def check_frame_index(frame_idx: int, num_frames: int) -> int:
    if isinstance(frame_idx, bool) or not isinstance(frame_idx, int | np.integer):
        raise FrameIndexError(f"frame index must be an int, got {frame_idx!r}")
    if not 0 <= int(frame_idx) < num_frames:
        raise FrameIndexError(f"frame index {frame_idx} is outside the video [0, {num_frames})")
    return int(frame_idx)


def check_obj_id(obj_id: int) -> int:
    if isinstance(obj_id, bool) or not isinstance(obj_id, int | np.integer):
        raise InvalidPromptError(f"object id must be an int, got {obj_id!r}")
    return int(obj_id)


def _check_inside(xy: np.ndarray, width: int, height: int, name: str) -> None:
    x, y = xy[..., 0], xy[..., 1]
    bad = (x < 0) | (x > width) | (y < 0) | (y > height)
    if np.any(bad):
        first = xy.reshape(-1, 2)[int(np.argmax(bad.reshape(-1)))]
        raise InvalidPromptError(
            f"{name} ({first[0]:g}, {first[1]:g}) is outside the {width}x{height} frame"
        )


def check_points(
    points: ArrayLike | None,
    labels: ArrayLike | None,
    box: ArrayLike | None,
    width: int,
    height: int,
) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """Validate clicks and a box given in pixel coordinates of a `width` x `height` frame.

    Returns:
        points: float64 (N, 2) x, y; labels: int32 (N,) in {0, 1}; box: float64 (4,) or None.
    """
    if points is None and labels is None and box is None:
        raise InvalidPromptError("empty prompt: give points with labels, or a box")
    if (points is None) != (labels is None):
        raise InvalidPromptError("points and labels must be given together")
    pts = np.zeros((0, 2))
    labs = np.zeros((0,), dtype=np.int32)
    if points is not None and labels is not None:
        pts = _as_float_array(points, "points")
        lab_arr = _as_float_array(labels, "labels")
        if pts.size == 0 and lab_arr.size == 0:
            pts, lab_arr = pts.reshape(0, 2), lab_arr.reshape(0)
        if pts.ndim != 2 or pts.shape[1] != 2:
            raise InvalidPromptError(f"points must have shape (N, 2), got {pts.shape}")
        if lab_arr.ndim != 1:
            raise InvalidPromptError(f"labels must have shape (N,), got {lab_arr.shape}")
        if len(pts) != len(lab_arr):
            raise InvalidPromptError(
                f"got {len(pts)} points but {len(lab_arr)} labels; they must match"
            )
        if not np.all((lab_arr == 0) | (lab_arr == 1)):
            raise InvalidPromptError("labels must be 1 (positive) or 0 (negative)")
        if len(pts) == 0 and box is None:
            raise InvalidPromptError("empty prompt: no points and no box")
        _check_inside(pts, width, height, "point")
        labs = lab_arr.astype(np.int32)
    box_arr = None
    if box is not None:
        box_arr = _as_float_array(box, "box").reshape(-1)
        if box_arr.shape != (4,):
            raise InvalidPromptError(f"box must be [x0, y0, x1, y1], got {box_arr.shape[0]} values")
        if box_arr[2] < box_arr[0] or box_arr[3] < box_arr[1]:
            raise InvalidPromptError("box must satisfy x0 <= x1 and y0 <= y1")
        _check_inside(box_arr.reshape(2, 2), width, height, "box corner")
    return pts, labs, box_arr


def check_mask(mask: ArrayLike, width: int, height: int) -> np.ndarray:
    """Validate a binary mask of the frame's size; returns a bool (H, W) array."""
    if isinstance(mask, torch.Tensor):
        mask = mask.detach().cpu().numpy()
    arr = np.asarray(mask)
    if arr.ndim != 2:
        raise InvalidPromptError(f"mask must be 2-D (H, W), got shape {arr.shape}")
    if arr.shape != (height, width):
        raise InvalidPromptError(
            f"mask is {arr.shape[1]}x{arr.shape[0]}, the frame is {width}x{height}"
        )
    if arr.dtype != np.bool_:
        if not np.issubdtype(arr.dtype, np.number):
            raise InvalidPromptError(f"mask must be boolean or numeric, got {arr.dtype}")
        if np.issubdtype(arr.dtype, np.floating) and not np.all(np.isfinite(arr)):
            raise InvalidPromptError("mask contains NaN or infinite values")
        arr = arr > 0.5 if np.issubdtype(arr.dtype, np.floating) else arr > 0
    return arr
