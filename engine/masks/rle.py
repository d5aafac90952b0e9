"""Binary masks and their COCO run-length encoding (RLE), via pycocotools.

A mask is a ``np.ndarray`` of shape ``[H, W]`` and dtype ``bool`` (C order on our side).
Its RLE is the COCO *compressed* form ``{"size": [H, W], "counts": str}``, the form SA-V and COCO
files store and the form the database keeps. pycocotools wants column-major (Fortran) uint8
input and hands back Fortran arrays; this module hides both facts.

``None`` stands for "the object is absent on that frame / has no mask there"; the ``*_or_none``
helpers pass it through, which keeps per-frame loops free of special cases.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, TypedDict

import numpy as np
from pycocotools import mask as coco_mask


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
    """
    size = [int(rle["size"][0]), int(rle["size"][1])]
    counts = rle["counts"]
    if isinstance(counts, str):
        return {"size": size, "counts": counts}
    if isinstance(counts, bytes):
        return {"size": size, "counts": counts.decode("ascii")}
    if isinstance(counts, list):
        compressed = coco_mask.frPyObjects({"size": size, "counts": counts}, size[0], size[1])
        return {"size": size, "counts": compressed["counts"].decode("ascii")}
    raise TypeError(f"unsupported RLE counts type {type(counts).__name__}")


def _to_coco(rle: Rle | dict[str, Any]) -> dict[str, Any]:
    """pycocotools' C side wants ``counts`` as bytes."""
    normalized = normalize_rle(rle)
    return {"size": normalized["size"], "counts": normalized["counts"].encode("ascii")}


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
