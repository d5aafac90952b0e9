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

Automatic-mask proposals (:func:`cleaned_in_image`) clean their masks along columns instead
(8-connectivity does not mind a transpose): column runs are the order of COCO's RLE, so the
proposal's area, box and RLE come from the cleaned runs, and no mask is turned back into pixels.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from pycocotools import mask as coco_mask
from scipy import sparse
from scipy.sparse import csgraph

from engine.masks.rle import Rle


def _components(count: int, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Connected-component label of each of ``count`` nodes joined by edges ``a[i] - b[i]``."""
    graph = sparse.coo_matrix((np.ones(a.size, dtype=np.int8), (a, b)), shape=(count, count))
    return csgraph.connected_components(graph, directed=False)[1]


@dataclass(frozen=True)
class Runs:
    """``[K, L, N]`` masks as maximal runs of equal pixels along their K * L lines of N pixels.

    Runs are in order (mask, line, position): run ``r`` covers ``length[r]`` pixels of line
    ``line[r]`` (global: mask ``line[r] // L``, line ``line[r] % L`` of it) from ``start[r]``,
    foreground when ``value[r]``. After a cleanup runs keep their extent, so neighbours may share
    a value.
    """

    shape: tuple[int, int, int]
    line: np.ndarray
    start: np.ndarray
    length: np.ndarray
    value: np.ndarray

    def pixels(self) -> np.ndarray:
        """``[K, L, N]`` bool."""
        return np.repeat(self.value, self.length).reshape(self.shape)


def runs_of(masks: np.ndarray) -> Runs:
    """The runs of ``[K, L, N]`` bool masks along their lines (see :class:`Runs`)."""
    n_masks, n_lines, width = masks.shape
    lines = np.ascontiguousarray(masks).reshape(-1, width)  # [K*L, N]
    is_start = np.empty(lines.shape, dtype=bool)
    is_start[:, 0] = True
    np.not_equal(lines[:, 1:], lines[:, :-1], out=is_start[:, 1:])
    pos = np.flatnonzero(is_start)  # line * N + x of each run's first pixel
    length = np.diff(np.append(pos, lines.size))
    line = pos // width
    return Runs(
        shape=(n_masks, n_lines, width),
        line=line,
        start=pos - line * width,
        length=length,
        value=lines.reshape(-1)[pos],
    )


def clean_masks(masks: np.ndarray, min_region_area: int) -> np.ndarray:
    """Fill holes, then remove specks, smaller than ``min_region_area`` pixels, per mask.

    Args:
        masks: ``[K, H, W]`` bool.

    Returns:
        ``[K, H, W]`` bool, mask by mask equal to ``cleanup.clean_mask(mask, min_region_area)``.
    """
    if min_region_area <= 0 or masks.size == 0:
        return masks.copy()
    return clean_runs(runs_of(masks), min_region_area).pixels()


def clean_runs(runs: Runs, min_region_area: int, *, lines_are_columns: bool = False) -> Runs:
    """:func:`clean_masks` on runs: the same runs with the cleaned masks' values.

    ``lines_are_columns``: the masks were given transposed (``[K, W, H]``, a line per image
    column), which connectivity does not mind; only the tie-break between equally large
    components, the first pixel in the image's row-major order, is computed accordingly.
    """
    if min_region_area <= 0 or runs.line.size == 0:
        return runs
    n_masks, height, width = runs.shape
    line, start, length, value = runs.line, runs.start, runs.length, runs.value
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
    labels = _components(line.size, a[same], b[same])
    sizes = np.bincount(labels, weights=length)
    small = sizes < min_region_area
    filled = value | (small[labels] & ~value)

    # 2. specks of the filled masks: foreground components smaller than the area go
    both = filled[a] & filled[b]
    below = np.flatnonzero(filled[:-1] & filled[1:] & (line[:-1] == line[1:]))
    labels = _components(
        line.size, np.concatenate([a[both], below]), np.concatenate([b[both], below + 1])
    )
    fg = np.flatnonzero(filled)
    comp_ids, fg_comp = np.unique(labels[fg], return_inverse=True)
    comp_size = np.bincount(fg_comp, weights=length[fg])
    comp_mask = np.zeros(comp_ids.size, dtype=np.int64)
    comp_mask[fg_comp] = line[fg] // height
    # the first pixel of a component in row-major order (ndimage.label's numbering) breaks
    # ties between equally large components when a mask keeps only its largest
    if lines_are_columns:  # a run of column x from row y starts at pixel y * W + x
        run_first = start[fg] * height + line[fg] % height
    else:
        run_first = line[fg] * width + start[fg]
    first_pixel = np.full(comp_ids.size, np.iinfo(np.int64).max)
    np.minimum.at(first_pixel, fg_comp, run_first)
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
    kept_run = np.zeros(line.size, dtype=bool)
    kept_run[fg] = keep[fg_comp]
    return Runs(runs.shape, line, start, length, kept_run)


@dataclass(frozen=True)
class ForegroundRuns:
    """The foreground of K masks of one image as vertical runs, sorted by (mask, column, row):
    run ``r`` covers rows ``y0[r]`` to ``y1[r]`` (exclusive) of column ``x[r]`` of mask ``k[r]``.

    Column runs are COCO's own order (its RLE is column-major), so areas, boxes and RLEs come
    from the runs without the masks' pixels."""

    n_masks: int
    image_hw: tuple[int, int]
    k: np.ndarray
    x: np.ndarray
    y0: np.ndarray
    y1: np.ndarray

    def _groups(self) -> tuple[np.ndarray, np.ndarray]:
        bounds = np.searchsorted(self.k, np.arange(self.n_masks + 1))
        return bounds[:-1], bounds[1:]

    def areas(self) -> np.ndarray:
        """int64 ``[K]`` foreground pixels per mask."""
        return np.bincount(self.k, weights=self.y1 - self.y0, minlength=self.n_masks).astype(
            np.int64
        )

    def boxes(self) -> np.ndarray:
        """int64 ``[K, 4]`` boxes ``x0, y0, x1, y1`` (exclusive ends); zeros for empty masks."""
        boxes = np.zeros((self.n_masks, 4), dtype=np.int64)
        first, end = self._groups()
        some = np.flatnonzero(end > first)
        if some.size:
            boxes[some, 0] = self.x[first[some]]
            boxes[some, 2] = self.x[end[some] - 1] + 1
            boxes[some, 1] = np.minimum.reduceat(self.y0, first[some])
            boxes[some, 3] = np.maximum.reduceat(self.y1, first[some])
        return boxes

    def rles(self, indices: Sequence[int]) -> list[Rle]:
        """COCO compressed RLEs of the masks at ``indices`` (each with some foreground)."""
        if len(indices) == 0:
            return []
        height, width = self.image_hw
        flat_start = self.x * height + self.y0
        flat_end = self.x * height + self.y1
        # touching runs of a mask (a column's last rows and the next column's first) are one
        new = np.ones(self.k.size, dtype=bool)
        new[1:] = (self.k[1:] != self.k[:-1]) | (flat_start[1:] != flat_end[:-1])
        heads = np.flatnonzero(new)
        seg_k = self.k[heads]
        seg_start = flat_start[heads]
        seg_end = flat_end[np.append(heads[1:], self.k.size) - 1]
        bounds = np.searchsorted(seg_k, np.arange(self.n_masks + 1))
        uncompressed = []
        for i in indices:
            a, b = bounds[i], bounds[i + 1]
            if b == a:
                raise ValueError(f"mask {i} is empty")
            starts, ends = seg_start[a:b], seg_end[a:b]
            counts = np.empty(2 * (b - a) + 1, dtype=np.int64)
            counts[0] = starts[0]
            counts[1:-1:2] = ends - starts
            counts[2:-1:2] = starts[1:] - ends[:-1]
            counts[-1] = height * width - ends[-1]
            if counts[-1] == 0:  # pycocotools writes no empty last run
                counts = counts[:-1]
            uncompressed.append({"size": [height, width], "counts": counts.tolist()})
        return [
            {"size": [height, width], "counts": e["counts"].decode("ascii")}
            for e in coco_mask.frPyObjects(uncompressed, height, width)
        ]


def cleaned_in_image(
    masks: np.ndarray, x0: int, y0: int, image_hw: tuple[int, int], min_region_area: int
) -> ForegroundRuns:
    """``[K, h, w]`` crop masks placed at ``(x0, y0)`` of an otherwise empty image, cleaned as
    ``clean_masks`` cleans the pasted ``[K, H, W]`` masks, as :class:`ForegroundRuns`.

    The cleanup runs on the crop with a border of one background pixel on each side that is not
    an image side, not on the whole image: the background outside the crop only matters as the
    region that background touching the crop's sides joins, and the one-pixel ring is as good a
    region when each of its parts (a side of at least ``min(h, w)`` pixels) is at least
    ``min_region_area`` (then neither it nor the outside it stands for is a hole). Otherwise the
    masks are pasted whole.
    """
    height, width = image_hw
    n_masks, h, w = masks.shape
    ring = min(h, w) >= min_region_area

    def pad(room: int) -> int:
        if room <= 0 or min_region_area <= 0:
            return 0
        return 1 if ring else room

    left, right, top, bottom = pad(x0), pad(width - x0 - w), pad(y0), pad(height - y0 - h)
    columns = np.zeros((n_masks, left + w + right, top + h + bottom), dtype=bool)
    columns[:, left : left + w, top : top + h] = masks.transpose(0, 2, 1)
    runs = clean_runs(runs_of(columns), min_region_area, lines_are_columns=True)
    fg = runs.value
    lines = columns.shape[1]
    line, start = runs.line[fg], runs.start[fg]
    return ForegroundRuns(
        n_masks=n_masks,
        image_hw=(height, width),
        k=line // lines,
        x=line % lines - left + x0,
        y0=start - top + y0,
        y1=start - top + y0 + runs.length[fg],
    )
