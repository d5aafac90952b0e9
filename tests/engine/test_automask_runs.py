"""The batched proposal post-processing gives exactly what the per-mask path gives: run-based
cleanup of many masks equals ``clean_mask`` on each, the "surely cut" shortcut only drops masks
the crop-edge filter drops after cleanup, and whole proposal lists are identical."""

from __future__ import annotations

import numpy as np
import pytest

from engine.auto_masklets.cleanup import (
    _clean_whole,
    clean_mask,
    is_cut_by_crop_edge,
    mask_box_xyxy,
    surely_cut_by_crop_edge,
)
from engine.auto_masklets.proposals import (
    AutoMaskConfig,
    CropBox,
    PredictFn,
    generate_crop_boxes,
    generate_first_frame_proposals,
)
from engine.auto_masklets.runs import clean_masks, cleaned_in_image
from engine.masks.rle import encode_rle

pytestmark = pytest.mark.filterwarnings(
    "ignore:__array__ implementation doesn't accept a copy keyword:DeprecationWarning"
)


def _noisy_mask(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    mask = np.zeros((h, w), bool)
    for _ in range(int(rng.integers(0, 8))):
        y, x = rng.integers(0, h), rng.integers(0, w)
        mask[y : y + rng.integers(1, 30), x : x + rng.integers(1, 30)] ^= True
    if rng.random() < 0.6:
        mask ^= rng.random((h, w)) < rng.choice([0.02, 0.1, 0.4])
    return mask


def test_run_cleanup_equals_per_mask_cleanup() -> None:
    rng = np.random.default_rng(0)
    for _ in range(200):
        h, w = (int(v) for v in rng.integers(1, 40, 2))
        masks = np.stack([_noisy_mask(rng, h, w) for _ in range(int(rng.integers(1, 6)))])
        area = int(rng.choice([1, 2, 5, 20, 60]))
        cleaned = clean_masks(masks, area)
        assert cleaned.shape == masks.shape
        assert cleaned.dtype == np.bool_
        for mask, out in zip(masks, cleaned):
            assert np.array_equal(out, _clean_whole(mask, area))
            assert np.array_equal(out, clean_mask(mask, area))


def test_run_cleanup_edge_cases() -> None:
    empty, full = np.zeros((7, 9), bool), np.ones((7, 9), bool)
    # every island small: the largest stays; of two equal ones, the first in row-major order
    specks = np.zeros((7, 9), bool)
    specks[0, 5:7] = True
    specks[3, 0:2] = True
    specks[5, 4] = True
    masks = np.stack([empty, full, specks])
    out = clean_masks(masks, 10)
    for mask, cleaned in zip(masks, out):
        assert np.array_equal(cleaned, _clean_whole(mask, 10))
    assert out[2].sum() == 2
    assert out[2][0, 5:7].all()
    assert np.array_equal(clean_masks(masks, 0), masks)
    assert clean_masks(np.zeros((0, 4, 4), bool), 5).shape == (0, 4, 4)


def test_crop_masks_as_column_runs_equal_the_pasted_masks_cleaned() -> None:
    # crops anywhere in the image, some too thin for the one-pixel ring (then pasted whole)
    rng = np.random.default_rng(2)
    checked = 0
    for _ in range(1500):
        height, width = (int(v) for v in rng.integers(3, 30, 2))
        h, w = int(rng.integers(1, height + 1)), int(rng.integers(1, width + 1))
        x0, y0 = int(rng.integers(0, width - w + 1)), int(rng.integers(0, height - h + 1))
        masks = rng.random((int(rng.integers(1, 4)), h, w)) < rng.choice([0.1, 0.5, 0.9])
        area = int(rng.choice([0, 1, 3, 10]))
        runs = cleaned_in_image(masks, x0, y0, (height, width), area)
        expected = []
        for mask in masks:
            full = np.zeros((height, width), bool)
            full[y0 : y0 + h, x0 : x0 + w] = mask
            expected.append(clean_mask(full, area))
        assert runs.areas().tolist() == [int(e.sum()) for e in expected]
        some = [i for i, e in enumerate(expected) if e.any()]
        assert [tuple(b) for b in runs.boxes()[some].tolist()] == [
            mask_box_xyxy(expected[i]) for i in some
        ]
        assert runs.rles(some) == [encode_rle(expected[i]) for i in some]
        checked += len(some)
    assert checked > 1000


def test_column_runs_keep_the_row_major_tie_break() -> None:
    # every island small and two of equal size: the first in row-major order stays, though
    # column by column the other comes first
    specks = np.zeros((1, 7, 9), bool)
    specks[0, 0, 5:7] = True
    specks[0, 3:5, 0] = True
    runs = cleaned_in_image(specks, 0, 0, (7, 9), 10)
    (rle,) = runs.rles([0])
    expected = np.zeros((7, 9), bool)
    expected[0, 5:7] = True
    assert rle == encode_rle(expected)


def test_surely_cut_masks_are_cut_after_cleanup() -> None:
    rng = np.random.default_rng(1)
    image_hw = (90, 120)
    crops = generate_crop_boxes(image_hw, 2, 0.3)[1:]
    sure = 0
    for _ in range(400):
        crop = crops[int(rng.integers(len(crops)))]
        mask = _noisy_mask(rng, *crop.hw)
        if rng.random() < 0.5:  # a large blob near a random side
            y, x = rng.integers(0, crop.hw[0]), rng.integers(0, crop.hw[1])
            mask[max(y - 12, 0) : y + 12, max(x - 12, 0) : x + 12] = True
        area = int(rng.choice([0, 10, 50]))
        tolerance = float(rng.choice([0.0, 5.0, 12.5]))
        if not surely_cut_by_crop_edge(mask, crop, image_hw, tolerance, area):
            continue
        sure += 1
        full = np.zeros(image_hw, bool)
        full[crop.y0 : crop.y1, crop.x0 : crop.x1] = mask
        box = mask_box_xyxy(clean_mask(full, area))
        assert box is not None
        assert is_cut_by_crop_edge(box, crop, image_hw, tolerance)
    assert sure > 50
    # never for the full image, nor without a long enough run
    whole = CropBox(0, 0, 120, 90, 0)
    assert not surely_cut_by_crop_edge(np.ones((90, 120), bool), whole, image_hw, 20.0, 10)
    corner = CropBox(0, 0, 70, 50, 1)
    dots = np.zeros((50, 70), bool)
    dots[::2, ::2] = True
    assert not surely_cut_by_crop_edge(dots, corner, image_hw, 20.0, 10)


def _blob_predict(hw: tuple[int, int], seed: int) -> PredictFn:
    """A predict_fn of noisy blobs around each point: logits [N, 3, h, w], IoUs [N, 3]."""
    rng = np.random.default_rng(seed)
    noise = rng.normal(0.0, 0.6, (3, *hw)).astype(np.float32)
    yy, xx = np.mgrid[0 : hw[0], 0 : hw[1]]

    def predict(points: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        logits = np.empty((len(points), 3, *hw), np.float32)
        for i, (x, y) in enumerate(points):
            for m, radius in enumerate((6.0, 14.0, 30.0)):
                dist = np.sqrt((xx - x) ** 2 + (yy - y) ** 2)
                logits[i, m] = (radius - dist) / 4.0 + noise[m]
        ious = rng.uniform(0.5, 1.0, (len(points), 3))
        return logits, ious

    return predict


def test_batched_and_per_mask_postprocessing_give_the_same_proposals() -> None:
    image_hw = (80, 110)
    config = AutoMaskConfig(
        points_per_side=6,
        points_per_batch=8,
        pred_iou_thresh=0.6,
        stability_score_thresh=0.3,
        crop_n_layers=1,
        crop_n_points_downscale_factor=2,
        crop_edge_tolerance_px=6.0,
        min_region_area=15,
        min_mask_area=20,
        nms_iou_thresh=0.8,
    )

    def factory(crop: CropBox) -> PredictFn:
        return _blob_predict(crop.hw, seed=crop.x0 + 7 * crop.y0 + 1)

    runs = {
        mode: generate_first_frame_proposals(
            _blob_predict(image_hw, 0), image_hw, config, factory, postprocess=mode
        )
        for mode in ("batched", "per_mask")
    }
    batched, per_mask = runs["batched"], runs["per_mask"]
    assert len(per_mask) >= 5
    assert any(p.crop_box.layer == 1 for p in per_mask)
    assert [(p.point_xy, p.crop_box, p.area, p.bbox, p.rle) for p in batched] == [
        (p.point_xy, p.crop_box, p.area, p.bbox, p.rle) for p in per_mask
    ]
