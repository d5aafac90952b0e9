"""Boundary-to-image alignment: does a mask's outline sit on the image's edges?

A good mask's outline follows the object's edge, where the image changes most; a mask that
drifted, was eroded or grew sits in texture, where it changes less. Per frame::

    alignment = log((g_on + eps) / (g_near + eps))

``g_on`` is the mean image gradient magnitude on the outline (the mask's inner and outer
one-pixel rings), ``g_near`` the mean over two bands 2-4 pixels inside and outside it. The
gradient is the Sobel magnitude, the largest over the colour channels (two colours of equal
brightness still make an edge). Positive: the outline follows edges; near 0 or negative: it does
not. Frames and masks are reduced by the same stride as in engine.quality.features.
"""

from __future__ import annotations

import math

import numpy as np
from scipy import ndimage

EPS = 1.0


def gradient_magnitude(image: np.ndarray) -> np.ndarray:
    """(H, W) or (H, W, C) image -> (H, W) float32 Sobel magnitude, max over channels."""
    data = np.asarray(image, dtype=np.float32)
    if data.ndim == 2:
        data = data[:, :, None]
    best = np.zeros(data.shape[:2], dtype=np.float32)
    for c in range(data.shape[2]):
        channel = data[:, :, c]
        magnitude = np.hypot(ndimage.sobel(channel, axis=0), ndimage.sobel(channel, axis=1))
        np.maximum(best, magnitude, out=best)
    return best


def boundary_alignment(mask: np.ndarray, image: np.ndarray) -> float:
    """The alignment of one (H, W) bool mask with its (H, W[, C]) image; nan when the mask is
    empty or too thin to have an inside band."""
    if not mask.any():
        return math.nan
    g = gradient_magnitude(image)
    if g.shape != mask.shape:
        return math.nan
    inner1 = ndimage.binary_erosion(mask, iterations=1)
    outer1 = ndimage.binary_dilation(mask, iterations=1)
    on = (mask & ~inner1) | (outer1 & ~mask)
    inner2 = ndimage.binary_erosion(mask, iterations=2)
    inner4 = ndimage.binary_erosion(mask, iterations=4)
    outer2 = ndimage.binary_dilation(mask, iterations=2)
    outer4 = ndimage.binary_dilation(mask, iterations=4)
    near = (inner2 & ~inner4) | (outer4 & ~outer2)
    if not on.any() or not near.any():
        return math.nan
    return math.log((float(g[on].mean()) + EPS) / (float(g[near].mean()) + EPS))
