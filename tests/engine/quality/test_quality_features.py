"""Quality features on hand-made masks: jitter, temporal consistency, per-frame suspicion."""

from __future__ import annotations

import math

import numpy as np
import pytest

from engine.quality.edges import boundary_alignment
from engine.quality.features import FEATURE_NAMES, masklet_features, temporal_jitter
from tests._masklets import square

H, W, T = 96, 128, 24


def _track(offsets: list[tuple[int, int]], size: int = 24) -> dict[int, np.ndarray | None]:
    return {i: square(H, W, 30 + dy, 40 + dx, size) for i, (dy, dx) in enumerate(offsets)}


def test_a_still_object_has_no_jitter_and_no_suspect_frame():
    features = masklet_features(_track([(0, 0)] * T))
    assert features.jitter == 0.0
    assert features.features["iou_mean"] == 1.0
    assert max(features.suspicion) == 0.0
    assert features.marks == []


def test_motion_at_constant_velocity_is_not_jitter():
    features = masklet_features(_track([(i, 2 * i) for i in range(T)], size=20))
    assert features.jitter == pytest.approx(0.0, abs=1e-9)


def test_jitter_grows_with_added_noise():
    rng = np.random.default_rng(7)
    values = []
    for sigma in (0.5, 2.0, 5.0):
        offsets = [tuple(int(round(v)) for v in rng.normal(0, sigma, size=2)) for _ in range(T)]
        values.append(masklet_features(_track(offsets)).jitter)  # type: ignore[arg-type]
    assert 0.0 < values[0] < values[1] < values[2]


def test_a_lost_frame_is_the_most_suspect_one():
    masks = _track([(0, 0)] * T)
    masks[11] = None
    features = masklet_features(masks)
    suspicion = features.frame_suspicion()
    assert suspicion[11] == max(suspicion.values()) == 1.0
    assert features.marks == [11]
    assert features.features["lost_fraction"] == pytest.approx(1 / T)


def test_a_sudden_jump_marks_its_frame_above_its_neighbours():
    offsets = [(0, 0)] * T
    offsets[7] = (20, 25)  # one frame off the track
    features = masklet_features(_track(offsets))
    suspicion = features.frame_suspicion()
    assert suspicion[7] > 0.5
    assert suspicion[7] > max(suspicion[k] for k in suspicion if abs(k - 7) > 1)
    assert 7 in features.marks


def test_low_stability_scores_are_suspect_and_features_keep_them():
    masks = _track([(0, 0)] * 6)
    stability = dict.fromkeys(masks, 0.99)
    stability[3] = 0.4
    features = masklet_features(masks, stability)
    assert features.frame_suspicion()[3] == 1.0
    assert features.features["stability_min"] == pytest.approx(0.4)


def test_unmeasurable_features_are_nan_and_the_vector_is_ordered():
    single = masklet_features({5: square(H, W, 0, 0, 10)})
    vector = single.vector()
    assert vector.shape == (len(FEATURE_NAMES),)
    assert math.isnan(single.features["iou_mean"])
    assert math.isnan(single.features["stability_mean"])
    assert vector[FEATURE_NAMES.index("present_fraction")] == 1.0


def test_fragments_and_holes_are_counted():
    mask = square(H, W, 10, 10, 30)
    mask[20:25, 20:25] = False  # a hole
    mask[60:70, 90:100] = True  # a second fragment
    features = masklet_features({0: mask, 1: mask})
    assert features.features["fragments_max"] == 2
    assert features.features["holes_mean"] == 1


def test_jitter_is_scale_invariant():
    wobble = [0, 2, 0, 2, 0, 2]
    small = masklet_features({i: square(H, W, 30 + dy, 20, 12) for i, dy in enumerate(wobble)})
    big = masklet_features(
        {i: square(2 * H, 2 * W, 60 + 2 * dy, 40, 24) for i, dy in enumerate(wobble)}
    )
    assert small.jitter > 0
    assert big.jitter == pytest.approx(small.jitter, rel=0.05)


def test_no_present_frame_means_no_jitter():
    assert temporal_jitter([None, None, None])[:2] == (0.0, 0.0)


def _scene(top: int = 30, left: int = 40, size: int = 24) -> np.ndarray:
    """(H, W, 3) uint8: a red square on a grey background with mild texture."""
    rng = np.random.default_rng(0)
    image = np.full((H, W, 3), 120, dtype=np.uint8)
    image += rng.integers(0, 12, size=image.shape, dtype=np.uint8)
    image[top : top + size, left : left + size] = (200, 40, 40)
    return image


def test_a_mask_on_the_object_edges_is_aligned_and_an_eroded_one_is_not():
    image = _scene()
    on_edges = square(H, W, 30, 40, 24)
    eroded = square(H, W, 33, 43, 18)
    assert boundary_alignment(on_edges, image) > 1.0
    assert boundary_alignment(eroded, image) < 0.0
    assert math.isnan(boundary_alignment(np.zeros((H, W), bool), image))


def test_a_frame_whose_mask_left_the_object_is_suspect_and_alignment_is_a_feature():
    images = dict.fromkeys(range(8), _scene())
    masks = {i: square(H, W, 30, 40, 24) for i in range(8)}
    masks[5] = square(H, W, 30, 44, 24)  # slid four pixels off the object
    features = masklet_features(masks, images=images)
    suspicion = features.frame_suspicion()
    assert suspicion[5] == max(suspicion.values())
    assert suspicion[5] > 0.5
    assert features.features["edge_alignment_min"] < features.features["edge_alignment_mean"]
    without = masklet_features(masks)
    assert math.isnan(without.features["edge_alignment_mean"])


def test_fast_smooth_motion_keeps_motion_iou_high_and_a_switch_breaks_it():
    fast = _track([(0, 6 * i) for i in range(12)], size=16)  # 6 px a frame: raw IoU is low
    smooth = masklet_features(fast)
    assert smooth.features["iou_min"] < 0.65
    assert smooth.features["motion_iou_min"] == pytest.approx(1.0)
    switched = dict(fast)
    for i in range(6, 12):  # from frame 6 on, another object far below
        switched[i] = square(H, W, 70, 10 + 2 * i, 12)
    broken = masklet_features(switched)
    assert broken.features["motion_iou_min"] < 0.1
    assert broken.features["motion_iou_drop"] > 0.8
    assert {5, 6} & set(broken.marks)
