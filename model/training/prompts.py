"""Prompt simulation for training (Meta's `SAM2Train.prepare_prompt_inputs` and
`sam2.modeling.sam2_utils` samplers).

Per clip: with probability `prob_point_prompt` the conditioning frames get points (a noisy box with
probability `prob_box_given_point`, else one click sampled uniformly in the GT), otherwise the GT
mask itself. 1..init_cond_frames initial conditioning frames, frame 0 always one. With point input,
the init frames plus up to `correction_frames - n_init` random other frames receive
`correction_clicks` iterative clicks, each sampled from the error region of the current prediction.
Points are `(x, y)` pixels of the S x S model input, as `SAM2Base` expects them.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from model.training.config import TrainConfig

BOX_LABELS = (2, 3)  # top-left, bottom-right corners


@dataclass(frozen=True)
class PromptPlan:
    """Which frames get which prompts, for a clip of `num_frames` frames."""

    use_points: bool  # False: the GT mask is the prompt on the init frames
    init_cond_frames: tuple[int, ...]  # frame 0 first
    box_frames: frozenset[int]  # init frames prompted with a box (point input only)
    correction_frames: tuple[int, ...]  # init frames first, then extra ones

    def processing_order(self, num_frames: int) -> list[int]:
        """Init conditioning frames first, then the others in temporal order."""
        rest = [t for t in range(num_frames) if t not in self.init_cond_frames]
        return list(self.init_cond_frames) + rest


def plan_prompts(num_frames: int, config: TrainConfig, rng: np.random.Generator) -> PromptPlan:
    use_points = bool(rng.random() < config.prob_point_prompt)
    n_init = min(int(rng.integers(1, config.init_cond_frames, endpoint=True)), num_frames)
    others = list(range(1, num_frames))
    init = [0] + sorted(int(t) for t in rng.choice(others, size=n_init - 1, replace=False))
    box_frames = frozenset(
        t for t in init if use_points and rng.random() < config.prob_box_given_point
    )
    corrections: list[int] = []
    if use_points and config.correction_frames > 0 and config.correction_clicks > 0:
        if config.correction_frames > n_init:
            n_correct = int(rng.integers(n_init, config.correction_frames, endpoint=True))
        else:
            n_correct = config.correction_frames
        corrections = init[:n_correct]
        rest = [t for t in range(num_frames) if t not in init]
        extra = min(n_correct - len(corrections), len(rest))
        if extra > 0:
            corrections += [int(t) for t in rng.choice(rest, size=extra, replace=False)]
    return PromptPlan(use_points, tuple(init), box_frames, tuple(corrections))


def mask_to_box(masks: torch.Tensor) -> torch.Tensor:
    """`[N, H, W]` bool -> `[N, 4]` float (x0, y0, x1, y1) inclusive pixel bounds (an empty mask
    gives (W, H, -1, -1), as Meta's `mask_to_box`)."""
    n, h, w = masks.shape
    xs = torch.arange(w, device=masks.device).expand(n, h, w)
    ys = torch.arange(h, device=masks.device)[:, None].expand(n, h, w)
    x0 = torch.where(masks, xs, w).flatten(1).amin(1)
    x1 = torch.where(masks, xs, -1).flatten(1).amax(1)
    y0 = torch.where(masks, ys, h).flatten(1).amin(1)
    y1 = torch.where(masks, ys, -1).flatten(1).amax(1)
    return torch.stack([x0, y0, x1, y1], dim=1).float()


def sample_box_points(
    masks: torch.Tensor,
    generator: torch.Generator,
    noise: float = 0.1,
    noise_bound: float = 20.0,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Noisy GT boxes as corner points: `[N, H, W]` bool -> (coords `[N, 2, 2]`, labels `[N, 2]`
    int32 = (2, 3)). Each side moves by up to +-noise of the box size, capped at noise_bound px."""
    n, h, w = masks.shape
    box = mask_to_box(masks)
    max_dx = torch.clamp((box[:, 2] - box[:, 0]) * noise, max=noise_bound)
    max_dy = torch.clamp((box[:, 3] - box[:, 1]) * noise, max=noise_bound)
    jitter = 2 * torch.rand(n, 4, generator=generator, device=masks.device) - 1
    box = box + jitter * torch.stack([max_dx, max_dy, max_dx, max_dy], dim=1)
    bounds = torch.tensor([w - 1, h - 1, w - 1, h - 1], device=masks.device, dtype=box.dtype)
    box = torch.minimum(box.clamp(min=0), bounds)
    labels = torch.tensor(BOX_LABELS, dtype=torch.int32, device=masks.device).repeat(n, 1)
    return box.reshape(n, 2, 2), labels


def sample_error_click(
    gt_masks: torch.Tensor, pred_masks: torch.Tensor | None, generator: torch.Generator
) -> tuple[torch.Tensor, torch.Tensor]:
    """One click per object, uniform over the error region: `[N, H, W]` bool GT and prediction
    (None = empty, i.e. a click uniform in the GT) -> (coords `[N, 1, 2]` float (x, y), labels
    `[N, 1]` int32). A false-negative pixel gives a positive click, a false positive a negative
    one; a perfect prediction gives a negative click in the background (Meta's
    `sample_random_points_from_errors`)."""
    n, h, w = gt_masks.shape
    if pred_masks is None:
        pred_masks = torch.zeros_like(gt_masks)
    errors = gt_masks ^ pred_masks
    coords = torch.zeros(n, 1, 2, device=gt_masks.device)
    labels = torch.zeros(n, 1, dtype=torch.int32, device=gt_masks.device)
    for i in range(n):
        region = errors[i] if errors[i].any() else ~gt_masks[i]
        flat = region.flatten().nonzero().squeeze(1)
        if flat.numel() == 0:  # full GT predicted perfectly: Meta's argmax lands on pixel 0
            continue
        pick = flat[torch.randint(flat.numel(), (1,), generator=generator, device=flat.device)]
        y, x = pick // w, pick % w
        coords[i, 0, 0], coords[i, 0, 1] = x.float(), y.float()
        labels[i, 0] = gt_masks[i].flatten()[pick].int()
    return coords, labels


def initial_point_inputs(
    gt_masks: torch.Tensor, use_box: bool, generator: torch.Generator
) -> dict[str, torch.Tensor]:
    """Point inputs `{"point_coords": [N, P, 2], "point_labels": [N, P]}` for an init frame:
    a noisy box (P = 2) or one click uniform in the GT (P = 1); gt_masks `[N, S, S]` bool."""
    if use_box:
        coords, labels = sample_box_points(gt_masks, generator)
    else:
        coords, labels = sample_error_click(gt_masks, None, generator)
    return {"point_coords": coords, "point_labels": labels}


def concat_points(
    point_inputs: dict[str, torch.Tensor] | None, coords: torch.Tensor, labels: torch.Tensor
) -> dict[str, torch.Tensor]:
    """Append clicks `[N, k, 2]` / `[N, k]` to point inputs (None = no clicks yet)."""
    if point_inputs is None:
        return {"point_coords": coords, "point_labels": labels}
    return {
        "point_coords": torch.cat([point_inputs["point_coords"], coords], dim=1),
        "point_labels": torch.cat([point_inputs["point_labels"], labels], dim=1),
    }
