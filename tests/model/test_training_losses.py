"""SAM 2 training losses against hand-computed values (model/training/losses.py)."""

from __future__ import annotations

import math

import pytest
import torch

from model.training.losses import (
    StepPrediction,
    clip_loss,
    dice_loss,
    iou_l1_loss,
    object_score_loss,
    sigmoid_focal_loss,
    step_losses,
)

LN2 = math.log(2.0)


def test_focal_loss_at_zero_logits() -> None:
    # p = 0.5 everywhere: ce = ln 2, (1 - p_t)^2 = 0.25; alpha_t = 0.25 (fg) / 0.75 (bg)
    logits = torch.zeros(1, 1, 2, 2)
    targets = torch.tensor([[[[1.0, 0.0], [0.0, 0.0]]]])
    expected = (0.25 * 0.25 * LN2 + 3 * 0.75 * 0.25 * LN2) / 4
    assert sigmoid_focal_loss(logits, targets).item() == pytest.approx(expected, rel=1e-6)


def test_focal_loss_confident_pixel() -> None:
    # logit 2 on a foreground pixel: p = sigmoid(2), ce = -log p, weight 0.25 (1 - p)^2
    p = 1 / (1 + math.exp(-2.0))
    expected = 0.25 * (1 - p) ** 2 * -math.log(p)
    got = sigmoid_focal_loss(torch.full((1, 1, 1, 1), 2.0), torch.ones(1, 1, 1, 1))
    assert got.item() == pytest.approx(expected, rel=1e-6)


def test_dice_loss() -> None:
    # p = 0.5 on 4 pixels, one foreground: 1 - (2 * 0.5 + 1) / (2 + 1 + 1) = 0.5
    targets = torch.tensor([[[[1.0, 0.0], [0.0, 0.0]]]])
    assert dice_loss(torch.zeros(1, 1, 2, 2), targets).item() == pytest.approx(0.5)


def test_iou_l1_loss() -> None:
    # prediction {0, 2}, GT {0, 1}: IoU 1/3; predicted 0.5 -> |0.5 - 1/3| = 1/6
    logits = torch.tensor([[[[1.0, -1.0], [1.0, -1.0]]]])
    targets = torch.tensor([[[[1.0, 1.0], [0.0, 0.0]]]])
    got = iou_l1_loss(logits, targets, torch.tensor([[0.5]]))
    assert got.item() == pytest.approx(1 / 6, rel=1e-6)


def test_object_score_loss_is_bce() -> None:
    got = object_score_loss(torch.tensor([[0.0], [3.0]]), torch.tensor([[1.0], [0.0]]))
    assert got.tolist() == pytest.approx([LN2, math.log(1 + math.exp(3.0))], rel=1e-6)


def _three_candidates() -> tuple[torch.Tensor, torch.Tensor]:
    """One object, GT = left half of 4x4; candidate 1 matches it, 0 and 2 do not."""
    gt = torch.zeros(1, 4, 4, dtype=torch.bool)
    gt[:, :, :2] = True
    good = torch.where(gt[0], 8.0, -8.0)
    masks = torch.stack([-good, good, torch.zeros(4, 4)])[None].clone().requires_grad_(True)
    return masks, gt


def test_multimask_backpropagates_only_the_best_candidate() -> None:
    masks, gt = _three_candidates()
    ious = torch.tensor([[0.0, 1.0, 0.5]])
    losses = step_losses(StepPrediction(masks, ious, torch.tensor([[5.0]])), gt)
    target = gt[:, None].float().expand(1, 3, 4, 4)
    focal = sigmoid_focal_loss(masks, target)[0, 1]
    dice = dice_loss(masks, target)[0, 1]
    assert losses["mask"].item() == pytest.approx(focal.item())
    assert losses["dice"].item() == pytest.approx(dice.item())
    # IoU loss over all three candidates: actual IoUs 0, 1 and 0 (zero logits: an empty mask)
    assert losses["iou"].item() == pytest.approx((0.0 + 0.0 + 0.5) / 3)
    (20 * losses["mask"] + losses["dice"]).backward()
    assert masks.grad is not None
    assert masks.grad[0, 1].abs().sum() > 0
    assert torch.all(masks.grad[0, 0] == 0)
    assert torch.all(masks.grad[0, 2] == 0)


def test_absent_object_counts_only_in_the_object_score() -> None:
    masks, _ = _three_candidates()
    empty = torch.zeros(1, 4, 4, dtype=torch.bool)
    losses = step_losses(StepPrediction(masks, torch.rand(1, 3), torch.tensor([[0.0]])), empty)
    assert losses["mask"].item() == losses["dice"].item() == losses["iou"].item() == 0.0
    assert losses["class"].item() == pytest.approx(LN2)


def test_clip_loss_sums_steps_and_frames_and_normalises() -> None:
    gt = torch.zeros(2, 2, 4, 4, dtype=torch.bool)  # T = 2 frames, N = 2 objects
    gt[:, 0, :2] = True
    steps = [
        [StepPrediction(torch.zeros(2, 1, 4, 4), torch.full((2, 1), 0.5), torch.zeros(2, 1))],
        [StepPrediction(torch.zeros(2, 1, 4, 4), torch.full((2, 1), 0.5), torch.zeros(2, 1))] * 2,
    ]
    parts = clip_loss(steps, gt, num_objects=4.0)
    one = step_losses(steps[0][0], gt[0])
    for name in ("mask", "dice", "iou", "class"):
        assert parts[name].item() == pytest.approx(3 * one[name].item() / 4.0, rel=1e-6)
    expected_total = 20 * parts["mask"] + parts["dice"] + parts["iou"] + parts["class"]
    assert parts["total"].item() == pytest.approx(expected_total.item(), rel=1e-6)
    # object 1 is absent: only its object score counts (BCE ln 2 at logit 0)
    assert one["class"].item() == pytest.approx(2 * LN2, rel=1e-6)


def _iou_head_gradient(loss_name: str, predicted: float) -> float:
    """d loss / d (IoU head logit) for a head predicting `predicted`, on a mask whose actual IoU
    with the GT is 1/2."""
    logit = torch.tensor([[math.log(predicted / (1 - predicted))]], requires_grad=True)
    masks = torch.tensor([[[[5.0, 5.0], [-5.0, -5.0]]]])  # predicts the top row
    gt = torch.tensor([[[True, False], [False, False]]])  # IoU 1/2
    parts = step_losses(
        StepPrediction(masks, logit.sigmoid(), torch.tensor([[5.0]])), gt, loss_name
    )
    parts["iou"].backward()
    assert logit.grad is not None
    return float(logit.grad)


def test_iou_bce_loss_keeps_a_saturated_iou_head_learning() -> None:
    # a head that learnt "IoU 0" while masks were empty (sigmoid 1e-12): under L1 its gradient
    # has vanished for good; under BCE it is predicted - actual = -0.5
    assert abs(_iou_head_gradient("l1", 1e-12)) < 1e-9
    assert _iou_head_gradient("bce", 1e-12) == pytest.approx(-0.5, abs=1e-4)
    assert _iou_head_gradient("bce", 0.5) == pytest.approx(0.0, abs=1e-6)
    with pytest.raises(ValueError, match="iou_loss"):
        _iou_head_gradient("mse", 0.5)
