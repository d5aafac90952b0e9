"""Mask post-processing on CPU: small holes and specks, without Meta's CUDA extension.

The official code computes 8-connected components with a CUDA kernel (`sam2._C`) and silently skips
these steps when the kernel is missing (always on CPU). Here the components come from
`scipy.ndimage.label`, so the steps run everywhere with the same semantics.
"""

from __future__ import annotations

import numpy as np
import torch
from scipy import ndimage

_EIGHT_CONNECTED = np.ones((3, 3), dtype=bool)


def connected_components(mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """8-connected components of binary masks, like the official `get_connected_components`.

    Args:
        mask: bool or {0, 1} tensor of shape (N, 1, H, W).

    Returns:
        labels: int32 (N, 1, H, W), component label (1, 2, ...) of foreground pixels, 0 elsewhere.
        areas: int32 (N, 1, H, W), the area of each foreground pixel's component, 0 elsewhere.
    """
    if mask.dim() != 4 or mask.size(1) != 1:
        raise ValueError(f"mask must have shape (N, 1, H, W), got {tuple(mask.shape)}")
    binary = mask.detach().to("cpu").bool().numpy()
    labels = np.zeros(binary.shape, dtype=np.int32)
    areas = np.zeros(binary.shape, dtype=np.int32)
    for i in range(binary.shape[0]):
        lab, count = ndimage.label(binary[i, 0], structure=_EIGHT_CONNECTED)
        if count == 0:
            continue
        sizes = np.bincount(lab.ravel()).astype(np.int32)
        sizes[0] = 0
        labels[i, 0] = lab
        areas[i, 0] = sizes[lab]
    return (
        torch.from_numpy(labels).to(mask.device),
        torch.from_numpy(areas).to(mask.device),
    )


def fill_holes_in_mask_scores(mask: torch.Tensor, max_area: int) -> torch.Tensor:
    """Set background components of at most `max_area` pixels to a small positive score (0.1).

    As the official `fill_holes_in_mask_scores`: background is `score <= 0`, and any background
    component (also one touching the border) of area <= `max_area` counts as a hole.

    Args:
        mask: float mask logits (N, 1, H, W).
        max_area: largest hole area in pixels; must be positive.
    """
    if max_area <= 0:
        raise ValueError("max_area must be positive")
    labels, areas = connected_components(mask <= 0)
    is_hole = (labels > 0) & (areas <= max_area)
    return torch.where(is_hole, torch.tensor(0.1, dtype=mask.dtype, device=mask.device), mask)
