"""The simulated click protocol: centre of the object, then centre of the largest error."""

from __future__ import annotations

import numpy as np
import pytest

from engine.simulation.clicks import Click, clicks_to_arrays, first_click, mask_iou, next_click


def _disc(h: int, w: int, cx: float, cy: float, r: float) -> np.ndarray:
    ys, xs = np.mgrid[0:h, 0:w]
    return np.asarray((xs - cx) ** 2 + (ys - cy) ** 2 <= r * r)


def _brute_depth(mask: np.ndarray) -> np.ndarray:
    """Distance of each mask pixel to the nearest pixel outside it (the border is outside)."""
    padded = np.pad(mask, 1)
    outside = np.argwhere(~padded) - 1
    depth = np.zeros(mask.shape)
    for y, x in np.argwhere(mask):
        depth[y, x] = np.sqrt(((outside - [y, x]) ** 2).sum(1)).min()
    return depth


def test_first_click_is_the_centre_of_a_disc() -> None:
    gt = _disc(48, 64, cx=40, cy=20, r=9)
    assert first_click(gt) == Click(x=40.0, y=20.0, positive=True)


def test_first_click_lies_inside_at_maximal_distance_from_the_boundary() -> None:
    # an L shape touching the left border: the thick arm wins, away from the image border
    gt = np.zeros((32, 40), dtype=bool)
    gt[4:28, 0:6] = True
    gt[14:28, 0:30] = True
    click = first_click(gt)
    depth = _brute_depth(gt)
    row, col = int(click.y), int(click.x)
    assert gt[row, col]
    assert depth[row, col] == pytest.approx(depth.max())
    assert col > 1  # the image border counts as boundary


def test_first_click_on_an_empty_mask_is_refused() -> None:
    with pytest.raises(ValueError, match="empty"):
        first_click(np.zeros((8, 8), dtype=bool))


def test_next_click_is_positive_in_the_missed_region() -> None:
    gt = _disc(64, 64, cx=32, cy=32, r=20)
    pred = gt.copy()
    pred[:, 32:] = False  # the right half is missed
    click = next_click(pred, gt)
    assert click is not None
    assert click.positive
    assert gt[int(click.y), int(click.x)]
    assert not pred[int(click.y), int(click.x)]


def test_next_click_is_negative_in_a_spurious_region() -> None:
    gt = _disc(64, 64, cx=20, cy=20, r=10)
    pred = gt | _disc(64, 64, cx=48, cy=48, r=8)
    click = next_click(pred, gt)
    assert click == Click(x=48.0, y=48.0, positive=False)


def test_next_click_picks_the_larger_error() -> None:
    gt = _disc(80, 80, cx=25, cy=25, r=15)
    pred = gt.copy()
    pred |= _disc(80, 80, cx=65, cy=65, r=4)  # small spurious blob
    pred &= ~_disc(80, 80, cx=25, cy=25, r=9)  # large hole: missed
    click = next_click(pred, gt)
    assert click == Click(x=25.0, y=25.0, positive=True)


def test_next_click_from_an_empty_prediction_equals_the_first_click() -> None:
    gt = _disc(40, 40, cx=12, cy=30, r=6)
    assert next_click(np.zeros_like(gt), gt) == first_click(gt)


def test_next_click_is_none_when_the_mask_is_right() -> None:
    gt = _disc(32, 32, cx=10, cy=10, r=5)
    assert next_click(gt.copy(), gt) is None
    empty = np.zeros((16, 16), dtype=bool)
    assert next_click(empty, empty) is None


def test_next_click_refuses_mismatched_shapes() -> None:
    with pytest.raises(ValueError, match="shape"):
        next_click(np.zeros((4, 4), bool), np.zeros((4, 5), bool))


def test_mask_iou() -> None:
    a = np.zeros((4, 4), dtype=bool)
    b = np.zeros((4, 4), dtype=bool)
    assert mask_iou(a, b) == 1.0
    a[0, :2] = True
    b[0, 1:3] = True
    assert mask_iou(a, b) == pytest.approx(1 / 3)
    assert mask_iou(a, np.zeros_like(a)) == 0.0


def test_clicks_to_arrays() -> None:
    points, labels = clicks_to_arrays([Click(3.0, 4.0, True), Click(5.0, 6.0, False)])
    np.testing.assert_array_equal(points, [[3.0, 4.0], [5.0, 6.0]])
    np.testing.assert_array_equal(labels, [1, 0])
    assert points.dtype == np.float32
    assert labels.dtype == np.int32
