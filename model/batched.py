"""Validation of batched prompts: B independent prompts for one image, decoded in one call."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch

from model._prompts import ArrayLike, InvalidPromptError, _as_float_array, _check_inside

BOX_LABELS = (2, 3)
"""Labels of a box's top-left and bottom-right corners in the prompt encoder."""

PAD_LABEL = -1
"""Label of a padding point (the prompt encoder's `not_a_point_embed`)."""


def check_batched_prompts(
    points: ArrayLike | None,
    labels: ArrayLike | None,
    boxes: ArrayLike | None,
    width: float,
    height: float,
) -> tuple[np.ndarray, np.ndarray]:
    """Validate B prompts in pixel coordinates of a `width` x `height` image.

    Args:
        points: (B, N, 2) x, y, or None; labels: (B, N) in {1, 0, -1 (padding)}, or None.
        boxes: (B, 4) [x0, y0, x1, y1], or None.

    Returns:
        coords float64 (B, K, 2) and labels int32 (B, K): a box comes first as two corner points
        labelled 2 and 3 (as the single-prompt path), then the clicks; K = 2 * has_box + N.
    """
    if points is None and labels is None and boxes is None:
        raise InvalidPromptError("empty prompt batch: give points with labels, or boxes")
    if (points is None) != (labels is None):
        raise InvalidPromptError("points and labels must be given together")
    parts_xy: list[np.ndarray] = []
    parts_lab: list[np.ndarray] = []
    batch: int | None = None
    if boxes is not None:
        box_arr = _as_float_array(boxes, "boxes")
        if box_arr.ndim != 2 or box_arr.shape[1] != 4:
            raise InvalidPromptError(f"boxes must have shape (B, 4), got {box_arr.shape}")
        if np.any(box_arr[:, 2] < box_arr[:, 0]) or np.any(box_arr[:, 3] < box_arr[:, 1]):
            raise InvalidPromptError("every box must satisfy x0 <= x1 and y0 <= y1")
        corners = box_arr.reshape(-1, 2, 2)
        _check_inside(corners, int(width), int(height), "box corner")
        batch = len(box_arr)
        parts_xy.append(corners)
        parts_lab.append(np.tile(np.array(BOX_LABELS, np.int32), (batch, 1)))
    if points is not None and labels is not None:
        pts = _as_float_array(points, "points")
        labs = _as_float_array(labels, "labels")
        if pts.ndim != 3 or pts.shape[2] != 2:
            raise InvalidPromptError(f"points must have shape (B, N, 2), got {pts.shape}")
        if labs.shape != pts.shape[:2]:
            raise InvalidPromptError(
                f"labels must have shape (B, N) = {pts.shape[:2]}, got {labs.shape}"
            )
        if not np.all((labs == 0) | (labs == 1) | (labs == PAD_LABEL)):
            raise InvalidPromptError("labels must be 1 (positive), 0 (negative) or -1 (padding)")
        if batch is not None and len(pts) != batch:
            raise InvalidPromptError(f"got {len(pts)} point prompts but {batch} boxes")
        real = labs != PAD_LABEL
        _check_inside(pts[real], int(width), int(height), "point")
        batch = len(pts)
        parts_xy.append(pts)
        parts_lab.append(labs.astype(np.int32))
    assert batch is not None
    if batch == 0:
        raise InvalidPromptError("empty prompt batch: B = 0")
    coords = np.concatenate(parts_xy, axis=1)
    all_labels = np.concatenate(parts_lab, axis=1)
    if not np.all((all_labels != PAD_LABEL).any(axis=1)):
        raise InvalidPromptError("every prompt needs at least one point or a box")
    return coords, all_labels


@dataclass(frozen=True)
class LowResBatch:
    """Decoder outputs of B prompts, upsampled to the image only on demand.

    Attributes:
        logits: float32 (B, C, S/4, S/4) low-res mask logits (not clamped).
        iou_predictions: float32 (B, C) numpy.
        image_hw: (H, W) of the image.
        upscale: (K, 1, S/4, S/4) logits -> (K, 1, H, W) logits (the predictor's post-processing).
    """

    logits: torch.Tensor
    iou_predictions: np.ndarray
    image_hw: tuple[int, int]
    upscale: Callable[[torch.Tensor], torch.Tensor]

    @property
    def shape(self) -> tuple[int, int, int, int]:
        """(B, C, H, W) of the full-resolution masks."""
        batch, channels = self.logits.shape[:2]
        return (int(batch), int(channels), *self.image_hw)

    def take(self, indices: np.ndarray) -> np.ndarray:
        """float32 (K, H, W) full-resolution logits of the masks at flat indices b * C + c."""
        flat = self.logits.flatten(0, 1)
        index = torch.as_tensor(np.asarray(indices, dtype=np.int64))
        if index.numel() == 0:
            return np.zeros((0, *self.image_hw), dtype=np.float32)
        with torch.inference_mode():
            picked = flat[index.to(flat.device)].unsqueeze(1)
            return self.upscale(picked)[:, 0].float().cpu().numpy()
