"""J, F and J&F: hand-made cases with known answers, and agreement with a loop-based reference."""

import math

import numpy as np
import pytest

from engine.metrics.scores import (
    aggregate_scores,
    boundary_map,
    boundary_scores,
    boundary_tolerance_px,
    evaluate_frame,
    evaluate_masklet,
    region_iou,
)

# --- independent reference, written from the definitions with loops and explicit distances ---


def _reference_boundary(mask: np.ndarray) -> np.ndarray:
    """A pixel is boundary if its east, south or south-east neighbour *inside the image* differs."""
    h, w = mask.shape
    out = np.zeros((h, w), dtype=bool)
    for y in range(h):
        for x in range(w):
            for dy, dx in ((0, 1), (1, 0), (1, 1)):
                ny, nx = y + dy, x + dx
                if ny < h and nx < w and mask[ny, nx] != mask[y, x]:
                    out[y, x] = True
    return out


def _reference_jf(pred: np.ndarray, gt: np.ndarray) -> tuple[float, float]:
    h, w = gt.shape
    inter = union = 0
    for y in range(h):
        for x in range(w):
            inter += bool(pred[y, x] and gt[y, x])
            union += bool(pred[y, x] or gt[y, x])
    j = 1.0 if union == 0 else inter / union
    radius = math.ceil(0.008 * math.sqrt(h * h + w * w))
    pb = np.argwhere(_reference_boundary(pred))
    gb = np.argwhere(_reference_boundary(gt))

    def share_within(src: np.ndarray, dst: np.ndarray) -> float:
        hits = 0
        for p in src:
            d2 = ((dst - p) ** 2).sum(axis=1)
            hits += bool((d2 <= radius * radius).any())
        return hits / len(src)

    if len(pb) == 0 and len(gb) == 0:
        p, r = 1.0, 1.0
    elif len(pb) == 0:
        p, r = 1.0, 0.0
    elif len(gb) == 0:
        p, r = 0.0, 1.0
    else:
        p, r = share_within(pb, gb), share_within(gb, pb)
    f = 0.0 if p + r == 0 else 2 * p * r / (p + r)
    return j, f


def _blobs(rng: np.random.Generator, hw: tuple[int, int], n: int) -> np.ndarray:
    h, w = hw
    yy, xx = np.mgrid[:h, :w]
    mask = np.zeros(hw, dtype=bool)
    for _ in range(n):
        cy, cx = rng.uniform(0, h), rng.uniform(0, w)
        ry, rx = rng.uniform(2, h / 3), rng.uniform(2, w / 3)
        mask |= ((yy - cy) / ry) ** 2 + ((xx - cx) / rx) ** 2 <= 1
    return mask


def _box(hw: tuple[int, int], y0: int, y1: int, x0: int, x1: int) -> np.ndarray:
    mask = np.zeros(hw, dtype=bool)
    mask[y0:y1, x0:x1] = True
    return mask


# --- known answers ---


def test_tolerance_is_ceil_of_0008_diagonal() -> None:
    assert boundary_tolerance_px(100, 100) == 2  # 0.008 * 141.4 = 1.13
    assert boundary_tolerance_px(480, 854) == 8  # 0.008 * 979.6 = 7.84
    assert boundary_tolerance_px(848, 480) == 8
    assert boundary_tolerance_px(10, 10, 3) == 3  # >= 1 means pixels


def test_empty_vs_empty_is_perfect() -> None:
    empty = np.zeros((30, 40), dtype=bool)
    score = evaluate_frame(empty, empty)
    assert (score.j, score.f) == (1.0, 1.0)
    assert evaluate_frame(None, None).j == 1.0


def test_identical_masks_are_perfect() -> None:
    mask = _box((50, 60), 10, 30, 5, 45)
    score = evaluate_frame(mask, mask.copy())
    assert (score.j, score.f) == (1.0, 1.0)


def test_missing_prediction_scores_zero() -> None:
    gt = _box((50, 60), 10, 30, 5, 45)
    score = evaluate_frame(None, gt)
    assert (score.j, score.f) == (0.0, 0.0)
    parts = boundary_scores(np.zeros_like(gt), gt)
    assert (parts.precision, parts.recall) == (1.0, 0.0)
    parts = boundary_scores(gt, np.zeros_like(gt))
    assert (parts.precision, parts.recall) == (0.0, 1.0)


def test_disjoint_far_apart_masks_score_zero() -> None:
    hw = (100, 100)
    score = evaluate_frame(_box(hw, 10, 20, 10, 20), _box(hw, 60, 80, 60, 90))
    assert (score.j, score.f) == (0.0, 0.0)


def test_boundary_of_a_box_is_the_ring_from_outside_top_left_to_inside_bottom_right() -> None:
    b = boundary_map(_box((20, 20), 5, 10, 5, 10))  # rows/cols 5..9
    ring = np.zeros((20, 20), dtype=bool)
    ring[4:10, 4:10] = True
    ring[5:9, 5:9] = False
    np.testing.assert_array_equal(b, ring)
    assert b.sum() == 4 * 5


def test_shifted_boxes_have_the_hand_computed_j_and_f() -> None:
    # 20x20 boxes, the prediction shifted 10 px right, on 100x100 (tolerance 2 px).
    # Each boundary is the 21x21 ring: 80 px. Matched within 2 px: 13 px on the top edge
    # (cols 29..41), 13 on the bottom, 4 on the near vertical edge -> P = R = 30/80.
    hw = (100, 100)
    gt = _box(hw, 20, 40, 20, 40)
    pred = _box(hw, 20, 40, 30, 50)
    assert region_iou(pred, gt) == pytest.approx(200 / 600)
    parts = boundary_scores(pred, gt)
    assert parts.precision == pytest.approx(30 / 80)
    assert parts.recall == pytest.approx(30 / 80)
    assert parts.f == pytest.approx(0.375)


@pytest.mark.parametrize(
    ("shift", "expected_f"), [(0, 1.0), (1, 1.0), (2, 1.0), (3, 0.5), (4, 0.0)]
)
def test_thin_lines_inside_and_outside_the_tolerance(shift: int, expected_f: float) -> None:
    # A 1-px line has a 2-row boundary (the row above it and itself); with a 2 px tolerance a
    # shift of 3 rows leaves one of the two rows matched (F = 0.5) and a shift of 4 none.
    hw = (100, 100)
    gt = _box(hw, 50, 51, 20, 80)
    pred = _box(hw, 50 + shift, 51 + shift, 20, 80)
    assert boundary_scores(pred, gt).f == pytest.approx(expected_f)
    assert region_iou(pred, gt) == (1.0 if shift == 0 else 0.0)


@pytest.mark.parametrize("hw", [(30, 45), (64, 48), (120, 90), (150, 170)])
def test_agrees_with_loop_reference_on_random_blobs(hw: tuple[int, int]) -> None:
    rng = np.random.default_rng(sum(hw))
    for _ in range(3):
        gt = _blobs(rng, hw, 2)
        pred = _blobs(rng, hw, 2) if rng.random() < 0.5 else np.roll(gt, 2, axis=1)
        score = evaluate_frame(pred, gt)
        j, f = _reference_jf(pred, gt)
        assert abs(score.j - j) < 1e-6
        assert abs(score.f - f) < 1e-6
        np.testing.assert_array_equal(boundary_map(gt), _reference_boundary(gt))


def test_mask_touching_the_image_edges_matches_reference() -> None:
    hw = (40, 50)
    gt = _box(hw, 0, 40, 30, 50)
    pred = _box(hw, 0, 25, 0, 20)
    score = evaluate_frame(pred, gt)
    j, f = _reference_jf(pred, gt)
    assert abs(score.j - j) < 1e-6
    assert abs(score.f - f) < 1e-6


# --- per masklet and per dataset ---


def test_masklet_mean_skips_first_and_last_annotated_frames() -> None:
    hw = (100, 100)
    gt = {t: _box(hw, 20, 40, 20, 40) for t in (0, 4, 8, 12)}
    pred = {0: None, 4: gt[4], 8: _box(hw, 20, 40, 30, 50), 12: None}
    score = evaluate_masklet(pred, gt, object_id="a")
    assert score.frame_indices == (4, 8)
    assert score.j == pytest.approx((1 + 1 / 3) / 2)
    assert score.f == pytest.approx((1 + 0.375) / 2)
    assert score.j_and_f == pytest.approx((score.j + score.f) / 2)
    full = evaluate_masklet(pred, gt, skip_first_and_last=False)
    assert full.n_frames == 4
    assert full.j == pytest.approx((0 + 1 + 1 / 3 + 0) / 4)


def test_masklet_needs_a_prediction_for_every_evaluated_frame() -> None:
    hw = (10, 10)
    gt = {t: _box(hw, 2, 5, 2, 5) for t in range(4)}
    with pytest.raises(ValueError, match="no prediction"):
        evaluate_masklet({0: gt[0], 1: gt[1]}, gt)
    with pytest.raises(ValueError, match="no frame left"):
        evaluate_masklet(gt, {0: gt[0], 1: gt[1]})


def test_dataset_score_averages_objects_not_videos() -> None:
    hw = (100, 100)
    gt = {t: _box(hw, 20, 40, 20, 40) for t in range(3)}
    perfect = evaluate_masklet(gt, gt, object_id="v1/1")
    shifted = {t: _box(hw, 20, 40, 30, 50) for t in range(3)}
    poor = evaluate_masklet(shifted, gt, object_id="v2/1")
    poor2 = evaluate_masklet(shifted, gt, object_id="v2/2")
    total = aggregate_scores([perfect, poor, poor2])
    assert total.n_objects == 3
    assert total.j == pytest.approx((1 + 2 / 3) / 3)
    assert total.f == pytest.approx((1 + 0.75) / 3)
    assert total.j_and_f == pytest.approx((total.j + total.f) / 2)
    with pytest.raises(ValueError):
        aggregate_scores([])
