"""SAM 2's training loss (Meta's `MultiStepMultiMasksAndIous`, MOSE weights).

For every prediction step of every frame (the first prediction and each correction click):
sigmoid focal (alpha 0.25, gamma 2) x20 + dice x1 + L1 between predicted and actual IoU x1 +
object-score BCE x1. With several candidate masks, focal and dice count only for the candidate
with the lowest 20 * focal + dice; the IoU loss is averaged over all candidates. Mask, dice and
IoU terms count only where the object is present. Each term is divided by `num_objects`.

The IoU term is Meta's L1 by default. `iou_loss="bce"` uses binary cross-entropy between the
predicted and the actual IoU instead, for training from scratch: early masks are empty (actual
IoU 0), L1 drives the sigmoid IoU head into saturation (1e-12), where its gradient vanishes for
good, and the best-of-three choice at inference (highest predicted IoU) is then arbitrary; the
cross-entropy's gradient on the head's logit is `predicted - actual`, which never vanishes.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F

WEIGHTS = {"mask": 20.0, "dice": 1.0, "iou": 1.0, "class": 1.0}
FOCAL_ALPHA = 0.25
FOCAL_GAMMA = 2.0
IOU_LOSSES = ("l1", "bce")


@dataclass(frozen=True)
class StepPrediction:
    """One prediction of N objects on a frame.

    masks: `[N, M, S, S]` high-res logits (M = 1 or 3 candidates); ious: `[N, M]` predicted
    IoUs; object_scores: `[N, 1]` object-presence logits.
    """

    masks: torch.Tensor
    ious: torch.Tensor
    object_scores: torch.Tensor


def sigmoid_focal_loss(
    logits: torch.Tensor,
    targets: torch.Tensor,
    alpha: float = FOCAL_ALPHA,
    gamma: float = FOCAL_GAMMA,
) -> torch.Tensor:
    """`[N, M, H, W]` -> `[N, M]`: focal loss averaged over pixels (alpha < 0: no alpha weight)."""
    prob = logits.sigmoid()
    ce = F.binary_cross_entropy_with_logits(logits, targets, reduction="none")
    p_t = prob * targets + (1 - prob) * (1 - targets)
    loss = ce * (1 - p_t) ** gamma
    if alpha >= 0:
        loss = (alpha * targets + (1 - alpha) * (1 - targets)) * loss
    return loss.flatten(2).mean(-1)


def dice_loss(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """`[N, M, H, W]` -> `[N, M]`: 1 - (2 |p t| + 1) / (|p| + |t| + 1), p = sigmoid(logits)."""
    prob = logits.sigmoid().flatten(2)
    targets = targets.flatten(2)
    numerator = 2 * (prob * targets).sum(-1)
    denominator = prob.sum(-1) + targets.sum(-1)
    return 1 - (numerator + 1) / (denominator + 1)


def actual_iou(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """`[N, M, H, W]` -> `[N, M]`: IoU of (logits > 0) with the GT (0 when both are empty)."""
    pred = logits.flatten(2) > 0
    gt = targets.flatten(2) > 0
    inter = (pred & gt).sum(-1).float()
    union = (pred | gt).sum(-1).float()
    return inter / union.clamp(min=1.0)


def iou_l1_loss(
    logits: torch.Tensor, targets: torch.Tensor, pred_ious: torch.Tensor
) -> torch.Tensor:
    """`[N, M, H, W]`, `[N, M]` -> `[N, M]`: |predicted IoU - IoU of (logits > 0) with the GT|."""
    return F.l1_loss(pred_ious.float(), actual_iou(logits, targets), reduction="none")


def iou_bce_loss(
    logits: torch.Tensor, targets: torch.Tensor, pred_ious: torch.Tensor
) -> torch.Tensor:
    """`[N, M, H, W]`, `[N, M]` -> `[N, M]`: binary cross-entropy of the predicted IoU (a
    probability, the sigmoid head's output) against the actual IoU (a soft target)."""
    prob = pred_ious.float().clamp(1e-30, 1 - 1e-7)
    actual = actual_iou(logits, targets)
    return -(actual * torch.log(prob) + (1 - actual) * torch.log1p(-prob))


def object_score_loss(scores: torch.Tensor, present: torch.Tensor) -> torch.Tensor:
    """`[N, 1]` logits and `[N, 1]` 0/1 targets -> `[N]` BCE (focal with gamma 0, no alpha)."""
    return sigmoid_focal_loss(scores.float()[..., None, None], present[..., None, None], -1, 0.0)[
        :, 0
    ]


def step_losses(
    prediction: StepPrediction, targets: torch.Tensor, iou_loss: str = "l1"
) -> dict[str, torch.Tensor]:
    """Unnormalised loss terms (summed over the N objects) of one step; targets `[N, S, S]` bool."""
    if iou_loss not in IOU_LOSSES:
        raise ValueError(f"iou_loss must be one of {IOU_LOSSES}, got {iou_loss!r}")
    masks = prediction.masks.float()
    target = targets[:, None].float().expand_as(masks)
    focal = sigmoid_focal_loss(masks, target)
    dice = dice_loss(masks, target)
    iou_fn = iou_l1_loss if iou_loss == "l1" else iou_bce_loss
    iou = iou_fn(masks, target, prediction.ious)
    present = targets.flatten(1).any(1, keepdim=True).float()  # [N, 1]
    if masks.size(1) > 1:
        best = torch.argmin(focal * WEIGHTS["mask"] + dice * WEIGHTS["dice"], dim=1)
        rows = torch.arange(masks.size(0), device=masks.device)
        focal, dice = focal[rows, best], dice[rows, best]
        iou = iou.mean(1)
    else:
        focal, dice, iou = focal[:, 0], dice[:, 0], iou[:, 0]
    presence = present[:, 0]
    return {
        "mask": (focal * presence).sum(),
        "dice": (dice * presence).sum(),
        "iou": (iou * presence).sum(),
        "class": object_score_loss(prediction.object_scores, present).sum(),
    }


def clip_loss(
    frames: Sequence[Sequence[StepPrediction]],
    gt_masks: torch.Tensor,
    num_objects: float,
    iou_loss: str = "l1",
) -> dict[str, torch.Tensor]:
    """Loss terms and their weighted sum `"total"` over all frames and steps.

    frames[t]: the predictions on frame t (first prediction, then each correction); gt_masks
    `[T, N, S, S]` bool; every term is divided by `num_objects` (objects in the whole batch).
    """
    parts = {name: gt_masks.new_zeros((), dtype=torch.float32) for name in WEIGHTS}
    for t, steps in enumerate(frames):
        for prediction in steps:
            for name, value in step_losses(prediction, gt_masks[t], iou_loss).items():
                parts[name] = parts[name] + value
    parts = {name: value / num_objects for name, value in parts.items()}
    parts["total"] = sum((WEIGHTS[name] * parts[name] for name in WEIGHTS), parts["mask"] * 0)
    return parts
