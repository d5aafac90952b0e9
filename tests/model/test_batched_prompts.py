"""Batched prompts in the image predictor: B prompts in one decoder call give each prompt's own
masks; bad batches are refused; automatic-mask proposals are the same either way."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from model._prompts import InvalidPromptError
from model.image_predictor import ImagePredictor

H, W = 60, 90


@pytest.fixture
def predictor(tiny_model: Any) -> ImagePredictor:
    rng = np.random.default_rng(0)
    image = rng.integers(0, 60, (H, W, 3)).astype(np.uint8)
    image[10:40, 20:60] = (220, 40, 40)
    p = ImagePredictor(tiny_model)
    p.set_image(image)
    return p


def _assert_same(batched: Any, singles: list[Any]) -> None:
    for b, single in enumerate(singles):
        np.testing.assert_allclose(batched.masks[b], single.masks, atol=1e-4, rtol=0)
        np.testing.assert_allclose(
            batched.iou_predictions[b], single.iou_predictions, atol=1e-5, rtol=0
        )
        np.testing.assert_allclose(
            batched.low_res_logits[b], single.low_res_logits, atol=1e-4, rtol=0
        )


@pytest.mark.parametrize("multimask", [True, False])
def test_batched_points_equal_one_call_per_prompt(
    predictor: ImagePredictor, multimask: bool
) -> None:
    rng = np.random.default_rng(1)
    points = rng.uniform(0, [W, H], (12, 1, 2))
    labels = np.ones((12, 1))
    out = predictor.predict_batch(points, labels, multimask_output=multimask, return_logits=True)
    channels = 3 if multimask else 1
    assert out.masks.shape == (12, channels, H, W)
    assert out.iou_predictions.shape == (12, channels)
    singles = [
        predictor.predict(points[b], labels[b], multimask_output=multimask, return_logits=True)
        for b in range(12)
    ]
    _assert_same(out, singles)


def test_boxes_with_points_and_padded_clicks(predictor: ImagePredictor) -> None:
    boxes = np.array([[10, 5, 50, 40], [0, 0, 89, 59], [30, 20, 70, 55]], dtype=float)
    points = np.array([[[30, 20], [0, 0]], [[60, 30], [10, 50]], [[40, 30], [0, 0]]], float)
    labels = np.array([[1, -1], [1, 0], [0, -1]])
    out = predictor.predict_batch(points, labels, boxes, multimask_output=False)
    singles = []
    for b in range(3):
        real = labels[b] != -1
        singles.append(
            predictor.predict(points[b][real], labels[b][real], boxes[b], multimask_output=False)
        )
    # padding points are the prompt encoder's "not a point": a prompt padded with them gives
    # the masks of its real clicks (SAM pads every point prompt with one such point anyway)
    for b, single in enumerate(singles):
        agree = (out.masks[b] == single.masks).mean()
        assert agree > 0.99, f"prompt {b}: {agree}"
    boxes_only = predictor.predict_batch(boxes=boxes, multimask_output=False)
    _assert_same(boxes_only, [predictor.predict(box=b, multimask_output=False) for b in boxes])


def test_lazy_upsampling_equals_the_full_output(predictor: ImagePredictor) -> None:
    points = np.array([[[10, 10]], [[45, 25]], [[80, 50]]], float)
    full = predictor.predict_batch(points, np.ones((3, 1)), return_logits=True)
    lazy = predictor.decode_batch(points, np.ones((3, 1)))
    assert lazy.shape == (3, 3, H, W)
    picked = lazy.take(np.array([1, 5, 6]))
    np.testing.assert_allclose(picked[0], full.masks[0, 1], atol=1e-5, rtol=0)
    np.testing.assert_allclose(picked[1], full.masks[1, 2], atol=1e-5, rtol=0)
    np.testing.assert_allclose(picked[2], full.masks[2, 0], atol=1e-5, rtol=0)
    assert lazy.take(np.array([], dtype=int)).shape == (0, H, W)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({}, "empty prompt batch"),
        ({"point_coords": np.zeros((2, 1, 2))}, "together"),
        ({"point_coords": np.zeros((2, 2)), "point_labels": np.ones(2)}, r"\(B, N, 2\)"),
        ({"point_coords": np.zeros((2, 1, 2)), "point_labels": np.ones((3, 1))}, "labels"),
        ({"point_coords": np.zeros((1, 1, 2)), "point_labels": [[2]]}, "padding"),
        ({"point_coords": [[[500, 1]]], "point_labels": [[1]]}, "outside"),
        ({"point_coords": [[[5, 1]]], "point_labels": [[-1]]}, "at least one"),
        ({"boxes": [[10, 10, 5, 20]]}, "x0 <= x1"),
        ({"boxes": [[1, 2, 3]]}, r"\(B, 4\)"),
        (
            {
                "point_coords": np.zeros((2, 1, 2)),
                "point_labels": np.ones((2, 1)),
                "boxes": [[1, 1, 2, 2]],
            },
            "2 point prompts but 1 boxes",
        ),
    ],
)
def test_bad_batches_are_refused(
    predictor: ImagePredictor, kwargs: dict[str, Any], message: str
) -> None:
    with pytest.raises(InvalidPromptError, match=message):
        predictor.predict_batch(**kwargs)
