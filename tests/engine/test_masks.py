"""RLE helpers: round trips, memory order, areas, boxes and None handling."""

import json

import numpy as np
import pytest

from engine.errors import InvalidInput
from engine.masks.rle import (
    InvalidRle,
    decode_rle,
    decode_rle_or_empty,
    decode_rle_or_none,
    empty_rle,
    encode_rle,
    encode_rle_batch,
    encode_rle_or_none,
    mask_area,
    mask_bbox,
    normalize_rle,
    rle_area,
    rle_area_or_zero,
    rle_bbox,
    rle_iou_matrix,
)

pytestmark = pytest.mark.filterwarnings(
    # pycocotools calls np.array(copy=False) on its own objects: numpy 2 warns on each decode.
    "ignore:__array__ implementation doesn't accept a copy keyword:DeprecationWarning"
)


def _random_mask(seed: int, hw: tuple[int, int] = (37, 53)) -> np.ndarray:
    return np.random.default_rng(seed).random(hw) > 0.6


def test_round_trip_of_c_and_fortran_ordered_masks_is_identical() -> None:
    mask = _random_mask(0)
    rle_c = encode_rle(np.ascontiguousarray(mask))
    rle_f = encode_rle(np.asfortranarray(mask))
    assert rle_c == rle_f
    assert rle_c["size"] == [37, 53]
    assert isinstance(rle_c["counts"], str)
    decoded = decode_rle(rle_c)
    assert decoded.dtype == np.bool_
    assert decoded.flags["C_CONTIGUOUS"]
    np.testing.assert_array_equal(decoded, mask)


def test_non_square_mask_keeps_height_and_width_apart() -> None:
    mask = np.zeros((4, 9), dtype=bool)
    mask[1, 7] = True
    rle = encode_rle(mask)
    assert rle["size"] == [4, 9]
    assert decode_rle(rle)[1, 7]
    assert rle_bbox(rle) == (7.0, 1.0, 1.0, 1.0)


def test_rle_is_json_serialisable_and_decodes_after_json() -> None:
    mask = _random_mask(1)
    rle = json.loads(json.dumps(encode_rle(mask)))
    np.testing.assert_array_equal(decode_rle(rle), mask)


def test_area_and_bbox_agree_between_mask_and_rle() -> None:
    mask = np.zeros((20, 30), dtype=bool)
    mask[3:8, 10:25] = True
    mask[15, 2] = True
    rle = encode_rle(mask)
    assert rle_area(rle) == mask_area(mask) == 5 * 15 + 1
    assert rle_bbox(rle) == mask_bbox(mask) == (2.0, 3.0, 23.0, 13.0)


def test_empty_mask_has_zero_area_and_zero_box() -> None:
    rle = empty_rle(6, 7)
    assert rle_area(rle) == 0
    assert rle_bbox(rle) == (0.0, 0.0, 0.0, 0.0)
    assert mask_bbox(np.zeros((6, 7), dtype=bool)) == (0.0, 0.0, 0.0, 0.0)
    assert not decode_rle(rle).any()


def test_integer_masks_are_accepted_and_logits_refused() -> None:
    mask = _random_mask(2)
    assert encode_rle(mask.astype(np.uint8)) == encode_rle(mask)
    with pytest.raises(TypeError):
        encode_rle(mask.astype(np.float32))
    with pytest.raises(ValueError):
        encode_rle(np.zeros((2, 3, 4), dtype=bool))


def test_batch_encoding_equals_single_encoding() -> None:
    masks = np.stack([_random_mask(s) for s in range(4)])
    assert encode_rle_batch(masks) == [encode_rle(m) for m in masks]
    assert encode_rle_batch(np.zeros((0, 5, 5), dtype=bool)) == []


def test_normalize_accepts_bytes_and_uncompressed_counts() -> None:
    mask = np.zeros((3, 4), dtype=bool)
    mask[:, 1] = True  # column-major runs: 3 background, 3 foreground, 6 background
    rle = encode_rle(mask)
    assert normalize_rle({"size": [3, 4], "counts": rle["counts"].encode()}) == rle
    assert normalize_rle({"size": [3, 4], "counts": [3, 3, 6]}) == rle


def test_none_helpers_pass_absence_through() -> None:
    assert encode_rle_or_none(None) is None
    assert decode_rle_or_none(None) is None
    assert rle_area_or_zero(None) == 0
    assert decode_rle_or_empty(None, 2, 3).shape == (2, 3)
    mask = _random_mask(3)
    np.testing.assert_array_equal(decode_rle_or_none(encode_rle_or_none(mask)), mask)


def test_iou_matrix_of_rles() -> None:
    a = np.zeros((10, 10), dtype=bool)
    a[:, :5] = True
    b = np.zeros((10, 10), dtype=bool)
    b[:, 3:8] = True
    ious = rle_iou_matrix([encode_rle(a)], [encode_rle(a), encode_rle(b)])
    np.testing.assert_allclose(ious, [[1.0, 20 / 80]])
    assert rle_iou_matrix([], [encode_rle(a)]).shape == (0, 1)


@pytest.mark.parametrize(
    ("rle", "says"),
    [
        ({"size": [4, 5], "counts": "garbage!!"}, "alphabet"),
        ({"size": [4, 5], "counts": ""}, "cover 0 pixels"),
        ({"size": [4, 5], "counts": "0"}, "cover 0 pixels"),
        ({"size": [4, 5], "counts": "2"}, "cover 2 pixels"),
        ({"size": [4, 5], "counts": "PP"}, "middle of a number"),
        ({"size": [4, 5], "counts": "12345678901"}, "cover 136 pixels"),
        ({"size": [4, 5], "counts": "ooooooooo0"}, "longer than any mask"),
        ({"size": [4, 5], "counts": "d\u00e9"}, "alphabet"),
        ({"size": [4, 5], "counts": b"\xff"}, "alphabet"),
        ({"size": [4, 5], "counts": [-3, 23]}, "negative"),
        ({"size": [4, 5], "counts": [3, 2]}, "cover 5 pixels"),
        ({"size": [4, 5], "counts": [3.5, 16.5]}, "integers"),
        ({"size": [4, 5], "counts": [True, 19]}, "integers"),
        ({"size": [-4, 5], "counts": "7"}, "RLE size"),
        ({"size": [0, 0], "counts": ""}, "RLE size"),
        ({"size": [4.0, 5], "counts": [20]}, "RLE size"),
        ({"size": [4, 5]}, "an RLE is"),
        ({"size": [4, 5], "counts": 20}, "counts type"),
    ],
)
def test_normalize_refuses_rles_that_are_not_h_by_w_pixels(rle, says: str) -> None:
    with pytest.raises(InvalidRle, match=says) as caught:
        normalize_rle(rle)
    assert isinstance(caught.value, InvalidInput)


def test_pycocotools_decodes_a_short_rle_into_garbage_without_complaint() -> None:
    """Why normalize_rle counts runs itself: pycocotools accepts "" for a 4x5 mask."""
    from pycocotools import mask as coco_mask

    coco_mask.decode({"size": [4, 5], "counts": b""})  # no error: uninitialised memory
    with pytest.raises(InvalidRle):
        normalize_rle({"size": [4, 5], "counts": ""})


def test_normalize_accepts_every_encoded_mask_and_reads_its_runs() -> None:
    """The counts-string reader agrees with pycocotools on masks of all shapes: compressing the
    runs it reads gives back the same string."""
    rng = np.random.default_rng(7)
    for trial in range(300):
        h, w = (int(v) for v in rng.integers(1, 70, size=2))
        mask = rng.random((h, w)) < (trial % 10) / 9
        if trial % 3 == 0:  # long runs: several characters per number, negative deltas
            mask = np.zeros((h, w), dtype=bool)
            mask[int(rng.integers(0, h)) :, int(rng.integers(0, w)) :] = True
        rle = encode_rle(mask)
        assert normalize_rle(rle) == rle
        flat = mask.flatten(order="F").astype(np.int8)
        edges = np.flatnonzero(np.diff(np.concatenate([[0], flat, [1 - flat[-1]]])))
        runs = np.diff(np.concatenate([[0], edges])).tolist()
        assert normalize_rle({"size": [h, w], "counts": runs}) == rle
