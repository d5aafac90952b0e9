"""Hole and speck removal on many masks at once, on their column runs instead of their pixels.

:func:`clean_masks` gives exactly what ``cleanup.clean_mask`` gives for each mask (SAM's order:
fill 8-connected background regions smaller than the area, then remove 8-connected foreground
regions smaller than it, keeping the largest when all are small), but labels runs, not pixels:
a mask of 360 x 640 pixels has a few thousand runs of equal pixels along its rows, so
connectivity is a graph of that many nodes (``scipy.sparse.csgraph``) and the whole batch is one
set of numpy calls instead of two ``ndimage.label`` calls and their bookkeeping per mask.

Runs: each row of each mask (a "line", ``line = mask * H + y``) is cut into maximal runs of
equal pixels. Two runs of neighbouring rows of the same mask touch in the 8-connected sense when
their column spans, widened by one column, overlap. Keys ``line * (W + 1) + x`` keep runs of
different lines apart in one sorted array.
"""

from __future__ import annotations

import numpy as np
from scipy import sparse
from scipy.sparse import csgraph


def _components(count: int, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Connected-component label of each of ``count`` nodes joined by edges ``a[i] - b[i]``."""
    graph = sparse.coo_matrix((np.ones(a.size, dtype=np.int8), (a, b)), shape=(count, count))
    return csgraph.connected_components(graph, directed=False)[1]


def clean_masks(masks: np.ndarray, min_region_area: int) -> np.ndarray:
    """Fill holes, then remove specks, smaller than ``min_region_area`` pixels, per mask.

    Args:
        masks: ``[K, H, W]`` bool.

    Returns:
        ``[K, H, W]`` bool, mask by mask equal to ``cleanup.clean_mask(mask, min_region_area)``.
    """
    if min_region_area <= 0 or masks.size == 0:
        return masks.copy()
    n_masks, height, width = masks.shape
    lines = np.ascontiguousarray(masks).reshape(-1, width)  # [K*H, W]
    n_lines = lines.shape[0]
    is_start = np.ones(lines.shape, dtype=bool)
    np.not_equal(lines[:, 1:], lines[:, :-1], out=is_start[:, 1:])
    pos = np.flatnonzero(is_start)  # line * W + x of each run's first pixel
    length = np.diff(np.append(pos, n_lines * width))
    line = pos // width
    start = pos - line * width
    value = lines.reshape(-1)[pos]
    stride = width + 1
    start_key = line * stride + start
    end_key = start_key + length

    # candidate 8-neighbours in the next row of the same mask: a contiguous range of runs
    has_next = (line % height) != height - 1
    a_runs = np.flatnonzero(has_next)
    next_base = (line[a_runs] + 1) * stride
    lo = np.searchsorted(end_key, next_base + start[a_runs], side="left")
    hi = np.searchsorted(start_key, next_base + start[a_runs] + length[a_runs], side="right")
    counts = hi - lo
    a = np.repeat(a_runs, counts)
    offsets = np.arange(a.size) - np.repeat(np.cumsum(counts) - counts, counts)
    b = np.repeat(lo, counts) + offsets

    # 1. holes: background components smaller than the area become foreground
    same = value[a] == value[b]
    labels = _components(pos.size, a[same], b[same])
    sizes = np.bincount(labels, weights=length)
    small = sizes < min_region_area
    filled = value | (small[labels] & ~value)

    # 2. specks of the filled masks: foreground components smaller than the area go
    both = filled[a] & filled[b]
    below = np.flatnonzero(filled[:-1] & filled[1:] & (line[:-1] == line[1:]))
    labels = _components(
        pos.size, np.concatenate([a[both], below]), np.concatenate([b[both], below + 1])
    )
    fg = np.flatnonzero(filled)
    comp_ids, fg_comp = np.unique(labels[fg], return_inverse=True)
    comp_size = np.bincount(fg_comp, weights=length[fg])
    comp_mask = np.zeros(comp_ids.size, dtype=np.int64)
    comp_mask[fg_comp] = line[fg] // height
    # the first pixel of a component in row-major order (ndimage.label's numbering) breaks
    # ties between equally large components when a mask keeps only its largest
    first_pixel = np.full(comp_ids.size, np.iinfo(np.int64).max)
    np.minimum.at(first_pixel, fg_comp, pos[fg])
    keep = comp_size >= min_region_area
    any_kept = np.zeros(n_masks, dtype=bool)
    any_kept[comp_mask[keep]] = True
    orphan = ~any_kept[comp_mask]  # components of masks whose every component is small
    if orphan.any():
        idx = np.flatnonzero(orphan)
        order = np.lexsort((first_pixel[idx], -comp_size[idx], comp_mask[idx]))
        ranked = idx[order]
        leader = np.ones(ranked.size, dtype=bool)
        leader[1:] = comp_mask[ranked[1:]] != comp_mask[ranked[:-1]]
        keep[ranked[leader]] = True
    kept_run = np.zeros(pos.size, dtype=bool)
    kept_run[fg] = keep[fg_comp]
    return np.repeat(kept_run, length).reshape(n_masks, height, width)
