"""Binary masks and their COCO run-length encoding (RLE), via pycocotools.

A mask is a ``np.ndarray`` of shape ``[H, W]`` and dtype ``bool`` (C order on our side).
Its RLE is the COCO *compressed* form ``{"size": [H, W], "counts": str}``, the form SA-V and COCO
files store and the form the database keeps. pycocotools wants column-major (Fortran) uint8
input and hands back Fortran arrays; this module hides both facts.

``None`` stands for "the object is absent on that frame / has no mask there"; the ``*_or_none``
helpers pass it through, which keeps per-frame loops free of special cases.

Every RLE that reaches pycocotools goes through :func:`normalize_rle`, which refuses one whose
runs do not cover exactly ``H * W`` pixels: pycocotools does not check, and decodes such a string
into uninitialised memory (``""`` on a 4x5 mask "decodes" to 640 foreground pixels).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, TypedDict

import numpy as np
from pycocotools import mask as coco_mask

from engine.errors import InvalidInput

#: Largest mask side accepted (pixels): 8K video is 7680x4320.
MAX_MASK_SIDE = 1 << 15
_MAX_RUN_CHUNKS = 7  # 7 x 5 bits covers any run of a MAX_MASK_SIDE**2 mask


class InvalidRle(InvalidInput):
    """An RLE that does not describe a ``[H, W]`` mask (HTTP 400)."""


class Rle(TypedDict):
    """COCO compressed RLE: ``size`` is ``[H, W]``; ``counts`` is the ASCII LEB128-like string."""

    size: list[int]
    counts: str


def _check_mask(mask: np.ndarray) -> np.ndarray:
    if mask.ndim != 2:
        raise ValueError(f"a mask must be 2-D [H, W], got shape {mask.shape}")
    if mask.dtype != np.bool_:
        # Logits or probabilities are not masks: refuse silently thresholding them at 0 or 0.5.
        if not np.issubdtype(mask.dtype, np.integer):
            raise TypeError(f"a mask must be bool or integer 0/1, got dtype {mask.dtype}")
        mask = mask != 0
    return mask


def encode_rle(mask: np.ndarray) -> Rle:
    """Encode one mask.

    Args:
        mask: ``[H, W]`` bool (or integer, non-zero = foreground), any memory order.

    Returns:
        ``{"size": [H, W], "counts": str}``.
    """
    mask = _check_mask(mask)
    fortran = np.asfortranarray(mask.astype(np.uint8, copy=False))
    encoded = coco_mask.encode(fortran)
    return {
        "size": [int(encoded["size"][0]), int(encoded["size"][1])],
        "counts": encoded["counts"].decode("ascii"),
    }


def encode_rle_batch(masks: np.ndarray) -> list[Rle]:
    """Encode ``[N, H, W]`` masks in one pycocotools call (faster than N calls for small masks)."""
    if masks.ndim != 3:
        raise ValueError(f"expected [N, H, W] masks, got shape {masks.shape}")
    if masks.shape[0] == 0:
        return []
    # pycocotools takes [H, W, N] column-major.
    fortran = np.asfortranarray(np.moveaxis(masks != 0, 0, -1).astype(np.uint8))
    return [
        {"size": [int(e["size"][0]), int(e["size"][1])], "counts": e["counts"].decode("ascii")}
        for e in coco_mask.encode(fortran)
    ]


def normalize_rle(rle: Rle | dict[str, Any]) -> Rle:
    """Return the compressed-string form of an RLE given with ``counts`` as str, bytes or a list.

    A list of counts is COCO's *uncompressed* RLE (column-major run lengths starting with zeros).

    Raises:
        InvalidRle: ``size`` is not ``[H, W]`` with sides in ``1..MAX_MASK_SIDE``, or the runs are
            malformed, negative or do not cover exactly ``H * W`` pixels.
    """
    if not isinstance(rle, dict) or "size" not in rle or "counts" not in rle:
        raise InvalidRle("an RLE is {'size': [H, W], 'counts': str | [int]}")
    height, width = _check_size(rle["size"])
    counts = rle["counts"]
    if isinstance(counts, bytes):
        try:
            counts = counts.decode("ascii")
        except UnicodeDecodeError:
            raise InvalidRle("RLE counts contain a character outside COCO's alphabet") from None
    if isinstance(counts, str):
        _check_runs(_compressed_runs(counts), height, width)
        return {"size": [height, width], "counts": counts}
    if isinstance(counts, list):
        if not all(type(c) is int for c in counts):
            raise InvalidRle("uncompressed RLE counts must be integers")
        _check_runs(np.asarray(counts, dtype=object), height, width)
        compressed = coco_mask.frPyObjects(
            {"size": [height, width], "counts": counts}, height, width
        )
        return {"size": [height, width], "counts": compressed["counts"].decode("ascii")}
    raise InvalidRle(f"unsupported RLE counts type {type(counts).__name__}")


def _check_size(size: Any) -> tuple[int, int]:
    if (
        not isinstance(size, list | tuple)
        or len(size) != 2
        or not all(isinstance(v, int | np.integer) and not isinstance(v, bool) for v in size)
        or not all(0 < v <= MAX_MASK_SIDE for v in size)
    ):
        raise InvalidRle(f"RLE size must be [H, W] with whole numbers 1..{MAX_MASK_SIDE}")
    return int(size[0]), int(size[1])


def _compressed_runs(counts: str) -> np.ndarray:
    """Run lengths of COCO's compressed counts string, as pycocotools' ``rleFrString`` reads it.

    Each run is 5-bit groups, least significant first, one character each (``chr(48 + group)``;
    bit 0x20 means "more groups follow", bit 0x10 of the last group is the sign); from the 4th
    run on, each is stored as the difference from the run two before it.
    """
    if not counts.isascii():
        raise InvalidRle("RLE counts contain a character outside COCO's alphabet")
    groups = np.frombuffer(counts.encode("ascii"), dtype=np.uint8).astype(np.int64) - 48
    if groups.size == 0:
        return groups
    if groups.min() < 0 or groups.max() > 63:
        raise InvalidRle("RLE counts contain a character outside COCO's alphabet")
    more = (groups & 0x20) != 0
    if more[-1]:
        raise InvalidRle("RLE counts end in the middle of a number")
    ends = np.flatnonzero(~more)
    starts = np.concatenate(([0], ends[:-1] + 1))
    lengths = ends - starts + 1
    if lengths.max() > _MAX_RUN_CHUNKS:
        raise InvalidRle("RLE counts hold a run longer than any mask")
    shift = 5 * (np.arange(groups.size) - np.repeat(starts, lengths))
    runs = np.add.reduceat((groups & 0x1F) << shift, starts)
    negative = (groups[ends] & 0x10) != 0
    runs = np.where(negative, runs | np.left_shift(-1, 5 * lengths), runs)
    # Undo the delta coding: runs[j] += runs[j - 2] for j >= 3, i.e. two running sums.
    if runs.size > 3:
        runs[3::2] = runs[1] + np.cumsum(runs[3::2])
    if runs.size > 4:
        runs[4::2] = runs[2] + np.cumsum(runs[4::2])
    return runs


def _check_runs(runs: np.ndarray, height: int, width: int) -> None:
    if runs.size and runs.min() < 0:
        raise InvalidRle("RLE counts hold a negative run")
    total = int(runs.sum()) if runs.size else 0
    if total != height * width:
        raise InvalidRle(
            f"RLE runs cover {total} pixels; a {width}x{height} (W x H) mask has {height * width}"
        )


def as_compressed_rle(rle: Rle | dict[str, Any]) -> Rle:
    """``rle`` in compressed-string form, for RLEs this program made or stored.

    A compressed string is taken as it is: it came from :func:`encode_rle`, or through
    :func:`normalize_rle` on its way into storage, and checking its runs again on every decode,
    area and IoU would cost more than the pycocotools call itself. Other forms (bytes, a list of
    runs) go through :func:`normalize_rle`. Input from outside goes through ``normalize_rle``.
    """
    counts = rle.get("counts") if isinstance(rle, dict) else None
    if isinstance(counts, str) and counts.isascii():
        height, width = _check_size(rle["size"])
        return {"size": [height, width], "counts": counts}
    return normalize_rle(rle)


def _to_coco(rle: Rle | dict[str, Any]) -> dict[str, Any]:
    """pycocotools' C side wants ``counts`` as bytes."""
    compressed = as_compressed_rle(rle)
    return {"size": compressed["size"], "counts": compressed["counts"].encode("ascii")}


def decode_rle(rle: Rle | dict[str, Any]) -> np.ndarray:
    """Decode one RLE to a C-contiguous ``[H, W]`` bool mask."""
    decoded = coco_mask.decode(_to_coco(rle))
    return np.ascontiguousarray(decoded, dtype=bool)


def rle_area(rle: Rle | dict[str, Any]) -> int:
    """Foreground pixel count, computed on the RLE without decoding."""
    return int(coco_mask.area(_to_coco(rle)))


def rle_bbox(rle: Rle | dict[str, Any]) -> tuple[float, float, float, float]:
    """COCO box ``(x, y, w, h)`` in pixels of the foreground; ``(0, 0, 0, 0)`` when empty."""
    x, y, w, h = coco_mask.toBbox(_to_coco(rle)).tolist()
    return (float(x), float(y), float(w), float(h))


def rle_iou_matrix(a: Sequence[Rle], b: Sequence[Rle]) -> np.ndarray:
    """Mask IoU between every RLE of ``a`` and every RLE of ``b``: ``[len(a), len(b)]`` float64.

    Two empty masks get IoU 0 here (pycocotools' convention), unlike J in ``engine.metrics.scores``.
    """
    if len(a) == 0 or len(b) == 0:
        return np.zeros((len(a), len(b)), dtype=np.float64)
    ious = coco_mask.iou([_to_coco(r) for r in a], [_to_coco(r) for r in b], [0] * len(b))
    return np.asarray(ious, dtype=np.float64).reshape(len(a), len(b))


def empty_rle(height: int, width: int) -> Rle:
    """RLE of an all-background ``[height, width]`` mask."""
    return encode_rle(np.zeros((height, width), dtype=bool))


def mask_area(mask: np.ndarray) -> int:
    """Foreground pixel count of an ``[H, W]`` mask."""
    return int(np.count_nonzero(mask))


def mask_bbox(mask: np.ndarray) -> tuple[float, float, float, float]:
    """COCO box ``(x, y, w, h)`` of the foreground of an ``[H, W]`` mask (same as ``rle_bbox``)."""
    rows = np.flatnonzero(mask.any(axis=1))
    if rows.size == 0:
        return (0.0, 0.0, 0.0, 0.0)
    cols = np.flatnonzero(mask.any(axis=0))
    y0, y1 = int(rows[0]), int(rows[-1])
    x0, x1 = int(cols[0]), int(cols[-1])
    return (float(x0), float(y0), float(x1 - x0 + 1), float(y1 - y0 + 1))


def encode_rle_or_none(mask: np.ndarray | None) -> Rle | None:
    """``encode_rle`` that maps ``None`` (object absent) to ``None``."""
    return None if mask is None else encode_rle(mask)


def decode_rle_or_none(rle: Rle | dict[str, Any] | None) -> np.ndarray | None:
    """``decode_rle`` that maps ``None`` to ``None``."""
    return None if rle is None else decode_rle(rle)


def decode_rle_or_empty(rle: Rle | dict[str, Any] | None, height: int, width: int) -> np.ndarray:
    """Decode, treating ``None`` as an all-background ``[height, width]`` mask."""
    if rle is None:
        return np.zeros((height, width), dtype=bool)
    return decode_rle(rle)


def rle_area_or_zero(rle: Rle | dict[str, Any] | None) -> int:
    """``rle_area`` with ``None`` counted as 0 pixels."""
    return 0 if rle is None else rle_area(rle)
