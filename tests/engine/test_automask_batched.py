"""Automatic-mask proposals with batched decoding: the same proposals as one call per point, and
the faster cleanup and NMS give exactly what the whole-image versions give."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
import torch

from engine.auto_masklets import generate
from engine.auto_masklets.cleanup import (
    _clean_whole,
    clean_mask,
    mask_nms,
    remove_small_regions,
)
from engine.auto_masklets.generate import config_from_overrides
from engine.masks.rle import encode_rle, rle_iou_matrix
from model.build import build_sam2
from model.frames import ArrayFrameSource


@pytest.fixture(autouse=True)
def _one_thread() -> Any:
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def test_batched_and_per_point_decoding_give_the_same_proposals() -> None:
    torch.manual_seed(0)
    net = build_sam2("test_tiny")
    rng = np.random.default_rng(2)
    image = np.kron(rng.integers(0, 255, (6, 8, 3)), np.ones((30, 30, 1))).astype(np.uint8)
    config = config_from_overrides(
        {
            "points_per_side": 6,
            "points_per_batch": 16,
            "crop_n_layers": 1,
            "crop_n_points_downscale_factor": 2,
            "pred_iou_thresh": 0.0,
            "stability_score_thresh": 0.0,
            "stability_score_offset": 0.05,
            "non_overlapping": False,
            "nms_iou_thresh": 1.0,
            "min_region_area": 20,
            "min_mask_area": 20,
            "crop_edge_tolerance_px": -1.0,
            "max_objects": 200,
        }
    )
    frames = ArrayFrameSource([image])
    batched = generate.first_frame_proposals(net, frames, config, lambda f, m: None)
    single = generate.first_frame_proposals(
        net, frames, config, lambda f, m: None, decode="per_point"
    )
    assert len(batched) == len(single) >= 10
    assert any(p.crop_box.layer == 1 for p in batched)
    for a, b in zip(single, batched):
        assert (a.point_xy, a.crop_box) == (b.point_xy, b.crop_box)
        assert rle_iou_matrix([a.rle], [b.rle])[0, 0] >= 0.99
        assert abs(a.predicted_iou - b.predicted_iou) < 1e-5


def _random_masks(rng: np.random.Generator, count: int) -> list[np.ndarray]:
    masks = []
    for _ in range(count):
        h, w = rng.integers(5, 50, 2)
        m = np.zeros((h, w), bool)
        for _ in range(rng.integers(0, 6)):
            y, x = rng.integers(0, h), rng.integers(0, w)
            m[y : y + rng.integers(1, 25), x : x + rng.integers(1, 25)] ^= True
        if rng.random() < 0.5:
            m ^= rng.random((h, w)) < 0.05
        masks.append(m)
    return masks


def test_windowed_cleanup_equals_whole_image_cleanup() -> None:
    rng = np.random.default_rng(0)
    for mask in _random_masks(rng, 400):
        area = int(rng.integers(1, 150))
        assert np.array_equal(clean_mask(mask, area), _clean_whole(mask, area))
    # a hole at the image edge outside the mask's box (a strip the window cannot measure)
    strip = np.zeros((10, 30), bool)
    strip[:, 2:] = True
    assert clean_mask(strip, 25).all()  # the 10 x 2 background strip is a small "hole"
    assert remove_small_regions(strip, 25, "holes")[0].all()


def test_bounded_nms_equals_brute_force() -> None:
    def brute(rles: list[Any], scores: list[float], thresh: float) -> list[int]:
        order = sorted(range(len(rles)), key=lambda i: (-scores[i], i))
        kept: list[int] = []
        for i in order:
            if kept and rle_iou_matrix([rles[i]], [rles[k] for k in kept]).max() > thresh:
                continue
            kept.append(i)
        return kept

    rng = np.random.default_rng(3)
    for _ in range(60):
        masks = []
        for _ in range(int(rng.integers(1, 12))):
            m = np.zeros((30, 40), bool)
            y, x = rng.integers(0, 30), rng.integers(0, 40)
            m[y : y + rng.integers(0, 20), x : x + rng.integers(0, 20)] = True
            masks.append(m)
            if rng.random() < 0.3:
                masks.append(m.copy())
        rles = [encode_rle(m) for m in masks]
        scores = list(rng.random(len(rles)).round(1))
        thresh = float(rng.choice([0.0, 0.3, 0.7, 1.0]))
        assert mask_nms(rles, scores, thresh) == brute(rles, scores, thresh)
