"""Parsing of what review clients send: ids, frame keys, notes and brush masks."""

from __future__ import annotations

import numpy as np
import pytest
from rest_framework import serializers

from api.review_serializers import (
    BrushFramesField,
    FrameNotesField,
    parse_client_rle,
    parse_int,
)
from engine.masks.rle import decode_rle, encode_rle
from tests._masklets import square

H, W = 12, 16


def _runs(mask: np.ndarray) -> list[int]:
    """Uncompressed COCO RLE counts: column-major runs, starting with background."""
    flat = mask.flatten(order="F")
    runs, value, run = [], False, 0
    for pixel in flat:
        if pixel != value:
            runs.append(run)
            value, run = pixel, 0
        run += 1
    runs.append(run)
    return runs


@pytest.mark.parametrize(("raw", "value"), [(3, 3), ("3", 3), ("007", 7), ("-1", -1), (0, 0)])
def test_parse_int_takes_ascii_digits(raw, value):
    assert parse_int(raw) == value


@pytest.mark.parametrize(
    "raw", ["²", "٣", "--5", "-", "", " 3", "3\n", "1e3", "0x3", "1" * 19, 2.0, True, None, [1]]
)
def test_parse_int_refuses_everything_else(raw):
    with pytest.raises(serializers.ValidationError):
        parse_int(raw)


def test_client_rle_compressed_and_uncompressed():
    mask = square(H, W, 3, 5, 4)
    rle = parse_client_rle({"size": [H, W], "counts": _runs(mask)})
    assert np.array_equal(decode_rle(rle), mask)
    assert parse_client_rle(encode_rle(mask)) == encode_rle(mask)


def test_client_rle_refuses_bad_shapes():
    runs = _runs(square(H, W, 3, 5, 4))
    for bad in (
        {"size": [H, W], "counts": runs[:-1]},
        {"size": [H, W], "counts": [-1, H * W + 1]},
        {"size": [H, W], "counts": [True, H * W - 1]},
        {"size": [H, W], "counts": 5},
        {"size": [H, W], "counts": "ab\x00"},
        {"size": [H, W], "counts": "é"},
        {"size": [H, 0], "counts": []},
        {"size": [H, W, 1], "counts": runs},
        {"size": [H, "16"], "counts": runs},
        {"counts": runs},
        [H, W],
    ):
        with pytest.raises(serializers.ValidationError):
            parse_client_rle(bad)


def test_frames_and_notes_fields_key_by_int():
    mask = encode_rle(square(H, W, 0, 0, 2))
    frames = BrushFramesField().to_internal_value({"4": mask, "2": None})
    assert {k: (v.rle, v.source) for k, v in frames.items()} == {
        4: (mask, "brush"),
        2: (None, "brush"),
    }
    assert FrameNotesField().to_internal_value({"1": "edge", 3: ""}) == {1: "edge", 3: ""}
    for bad in ({"1": mask, "01": mask}, {"x": mask}, [mask]):
        with pytest.raises(serializers.ValidationError):
            BrushFramesField().to_internal_value(bad)
    for bad_notes in ({"1": "a\x00"}, {"1": 5}, {"1": "x" * 2001}, {"²": "a"}, "1: a"):
        with pytest.raises(serializers.ValidationError):
            FrameNotesField().to_internal_value(bad_notes)
