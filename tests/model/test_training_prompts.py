"""Training prompt simulation (model/training/prompts.py)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from model.training.config import TrainConfig
from model.training.prompts import (
    concat_points,
    mask_to_box,
    plan_prompts,
    sample_box_points,
    sample_error_click,
)


def _square(n: int = 1, size: int = 64, lo: int = 10, hi: int = 40) -> torch.Tensor:
    masks = torch.zeros(n, size, size, dtype=torch.bool)
    masks[:, lo:hi, lo : hi + 10] = True  # 30 rows x 40 columns
    return masks


def test_mask_to_box_inclusive_bounds() -> None:
    assert mask_to_box(_square()).tolist() == [[10.0, 10.0, 49.0, 39.0]]


def test_box_noise_is_bounded_by_ten_percent_of_the_size() -> None:
    generator = torch.Generator().manual_seed(0)
    masks = _square(n=200)
    coords, labels = sample_box_points(masks, generator)
    assert coords.shape == (200, 2, 2)
    assert labels.tolist() == [[2, 3]] * 200
    box = coords.reshape(200, 4)
    exact = torch.tensor([10.0, 10.0, 49.0, 39.0])
    bound = torch.tensor([3.9, 2.9, 3.9, 2.9])  # 10 % of width 39 / height 29
    deviation = (box - exact).abs()
    assert torch.all(deviation <= bound + 1e-5)
    assert torch.all(deviation.amax(0) > bound * 0.8)  # the noise does use its range


def test_box_noise_is_capped_at_twenty_pixels() -> None:
    generator = torch.Generator().manual_seed(1)
    masks = torch.zeros(100, 600, 600, dtype=torch.bool)
    masks[:, 50:550, 50:550] = True  # 10 % would be 50 px
    coords, _ = sample_box_points(masks, generator)
    deviation = (coords.reshape(100, 4) - torch.tensor([50.0, 50.0, 549.0, 549.0])).abs()
    assert deviation.max() <= 20.0
    assert deviation.max() > 15.0


def test_click_from_empty_prediction_is_a_positive_click_in_the_gt() -> None:
    generator = torch.Generator().manual_seed(0)
    masks = _square(n=50)
    coords, labels = sample_error_click(masks, None, generator)
    xs, ys = coords[:, 0, 0].long(), coords[:, 0, 1].long()
    assert labels.tolist() == [[1]] * 50
    assert torch.all(masks[torch.arange(50), ys, xs])
    assert len(set(zip(xs.tolist(), ys.tolist()))) > 30  # uniform, not a fixed point


def test_error_click_label_follows_the_error_type() -> None:
    generator = torch.Generator().manual_seed(0)
    gt = torch.zeros(2, 8, 8, dtype=torch.bool)
    gt[:, :4] = True
    pred = gt.clone()
    pred[0, 6, 6] = True  # object 0: a single false positive pixel
    pred[1, 0, 3] = False  # object 1: a single false negative pixel
    coords, labels = sample_error_click(gt, pred, generator)
    assert coords[:, 0].tolist() == [[6.0, 6.0], [3.0, 0.0]]  # (x, y)
    assert labels.tolist() == [[0], [1]]


def test_perfect_prediction_gets_a_negative_background_click() -> None:
    generator = torch.Generator().manual_seed(0)
    gt = _square(n=20)
    coords, labels = sample_error_click(gt, gt.clone(), generator)
    xs, ys = coords[:, 0, 0].long(), coords[:, 0, 1].long()
    assert labels.tolist() == [[0]] * 20
    assert not torch.any(gt[torch.arange(20), ys, xs])


def test_concat_points_appends_clicks() -> None:
    first = concat_points(None, torch.zeros(2, 1, 2), torch.ones(2, 1, dtype=torch.int32))
    both = concat_points(first, torch.ones(2, 1, 2), torch.zeros(2, 1, dtype=torch.int32))
    assert both["point_coords"].shape == (2, 2, 2)
    assert both["point_labels"].tolist() == [[1, 0], [1, 0]]


def test_plans_follow_the_recipe() -> None:
    config = TrainConfig(steps=1)
    plans = [plan_prompts(8, config, np.random.default_rng(i)) for i in range(400)]
    assert all(p.init_cond_frames[0] == 0 for p in plans)
    assert {len(p.init_cond_frames) for p in plans} == {1, 2}
    points = [p for p in plans if p.use_points]
    masks = [p for p in plans if not p.use_points]
    assert 0.4 < len(points) / len(plans) < 0.6
    assert all(not p.box_frames and not p.correction_frames for p in masks)
    boxed = sum(len(p.box_frames) for p in points) / sum(len(p.init_cond_frames) for p in points)
    assert 0.4 < boxed < 0.6
    for p in points:
        # init frames are always corrected; at most correction_frames frames in total
        assert set(p.init_cond_frames) <= set(p.correction_frames)
        assert 1 <= len(p.correction_frames) <= 2
        assert len(set(p.correction_frames)) == len(p.correction_frames)
    assert any(len(p.correction_frames) == 2 and len(p.init_cond_frames) == 1 for p in points)
    order = plans[0].processing_order(8)
    assert sorted(order) == list(range(8))
    assert order[: len(plans[0].init_cond_frames)] == list(plans[0].init_cond_frames)


def test_plan_is_a_function_of_the_generator_seed() -> None:
    config = TrainConfig(steps=1)
    one = plan_prompts(8, config, np.random.default_rng([123, 4, 1]))
    two = plan_prompts(8, config, np.random.default_rng([123, 4, 1]))
    assert one == two


def test_single_frame_clip_plan() -> None:
    plan = plan_prompts(1, TrainConfig(steps=1, prob_point_prompt=1.0), np.random.default_rng(0))
    assert plan.init_cond_frames == (0,)
    assert plan.correction_frames == (0,)


@pytest.mark.parametrize("bad", [{"steps": 0}, {"steps": 1, "prob_point_prompt": 1.5}])
def test_config_validation(bad: dict) -> None:
    with pytest.raises(ValueError):
        TrainConfig(**bad)
