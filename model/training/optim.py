"""AdamW parameter groups and learning-rate schedule of SAM 2's fine-tuning recipe.

* `image_encoder.*` uses `vision_lr`, everything else `base_lr`.
* Layer-wise decay on `image_encoder.trunk` (Meta's `layer_decay_param_modifier`, Hiera's
  `get_layer_id`): with L trunk blocks, scale = layer_decay ** (L + 1 - layer_id), where patch and
  position embeddings are layer 0 and block i is layer i + 1; `*pos_embed*` is pinned to 1.0.
* Weight decay 0 for biases and normalisation layers (nn.LayerNorm and our LayerNorm2d).
* Both learning rates follow a cosine from lr to lr * min_lr_ratio over the run, after an optional
  linear warm-up from lr / warmup_steps over the first `warmup_steps` steps.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn

from model._layers import LayerNorm2d
from model.sam2_base import Sam2Model
from model.training.config import TrainConfig

TRUNK = "image_encoder.trunk."
VISION = "image_encoder."


@dataclass(frozen=True)
class ParamGroupKey:
    vision: bool  # vision_lr (image_encoder.*) or base_lr
    lr_scale: float
    weight_decay: float


def trunk_layer_id(name: str, num_blocks: int) -> int:
    """Layer id of a trunk parameter name (relative to the trunk): 0 for patch/pos embeddings,
    i + 1 for block i, num_blocks + 1 for anything else."""
    if "pos_embed" in name or "patch_embed" in name:
        return 0
    if name.startswith("blocks."):
        return int(name.split(".")[1]) + 1
    return num_blocks + 1


def layer_decay_scale(name: str, num_blocks: int, layer_decay: float) -> float:
    """Learning-rate scale of trunk parameter `name` (relative to the trunk)."""
    if "pos_embed" in name:
        return 1.0
    return float(layer_decay ** (num_blocks + 1 - trunk_layer_id(name, num_blocks)))


def no_weight_decay_names(model: nn.Module) -> set[str]:
    """Full names of biases and of normalisation-layer parameters."""
    names = {name for name, _ in model.named_parameters() if "bias" in name}
    for module_name, module in model.named_modules():
        if isinstance(module, nn.LayerNorm | LayerNorm2d):
            prefix = f"{module_name}." if module_name else ""
            names.update(prefix + name for name, _ in module.named_parameters(recurse=False))
    return names


def param_groups(model: Sam2Model, config: TrainConfig) -> list[dict]:
    """AdamW parameter groups (trainable parameters only) with keys `params`, `lr`, `lr_scale`,
    `vision` and `weight_decay`; `lr` is set by `set_learning_rates`."""
    num_blocks = len(model.image_encoder.trunk.blocks)
    no_decay = no_weight_decay_names(model)
    groups: dict[ParamGroupKey, list[nn.Parameter]] = {}
    for name, param in model.named_parameters():
        if not param.requires_grad:
            continue
        scale = 1.0
        if name.startswith(TRUNK):
            scale = layer_decay_scale(name[len(TRUNK) :], num_blocks, config.layer_decay)
        decay = 0.0 if name in no_decay else config.weight_decay
        key = ParamGroupKey(name.startswith(VISION), scale, decay)
        groups.setdefault(key, []).append(param)
    return [
        {
            "params": params,
            "lr": 0.0,
            "lr_scale": key.lr_scale,
            "vision": key.vision,
            "weight_decay": key.weight_decay,
        }
        for key, params in groups.items()
    ]


def cosine_lr(base: float, step: int, total_steps: int, min_ratio: float) -> float:
    """Cosine from `base` (step 0) to `base * min_ratio` (step total_steps)."""
    progress = min(step / max(total_steps, 1), 1.0)
    end = base * min_ratio
    return end + 0.5 * (base - end) * (1 + math.cos(math.pi * progress))


def warmup_factor(step: int, warmup_steps: int) -> float:
    """Linear warm-up: (step + 1) / warmup_steps during the first `warmup_steps` steps, then 1."""
    if step >= warmup_steps:
        return 1.0
    return (step + 1) / warmup_steps


def set_learning_rates(optimizer: torch.optim.Optimizer, config: TrainConfig, step: int) -> float:
    """Set every group's lr for optimiser step `step` (0-based); returns the current base lr."""
    warm = warmup_factor(step, config.warmup_steps)
    base = warm * cosine_lr(config.base_lr, step, config.steps, config.min_lr_ratio)
    vision = warm * cosine_lr(config.vision_lr, step, config.steps, config.min_lr_ratio)
    for group in optimizer.param_groups:
        group["lr"] = (vision if group["vision"] else base) * group["lr_scale"]
    return base


def build_optimizer(model: Sam2Model, config: TrainConfig) -> torch.optim.AdamW:
    """AdamW over the trainable parameters (frozen image encoder: excluded)."""
    if config.freeze_image_encoder:
        for param in model.image_encoder.parameters():
            param.requires_grad_(False)
    groups = param_groups(model, config)
    # the fused kernel: one pass over all tensors (per-tensor AdamW was a third of a small
    # model's CPU step)
    fused = all(p.device.type in ("cpu", "cuda") for g in groups for p in g["params"])
    optimizer = torch.optim.AdamW(groups, fused=fused)
    set_learning_rates(optimizer, config, 0)
    return optimizer
