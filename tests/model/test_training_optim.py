"""AdamW parameter groups and schedule (model/training/optim.py)."""

from __future__ import annotations

import math
from collections.abc import Callable

import pytest
import torch

from model.sam2_base import Sam2Model
from model.training.config import TrainConfig
from model.training.optim import build_optimizer, cosine_lr, set_learning_rates


def _lr_and_decay(optimizer: torch.optim.Optimizer, model: Sam2Model) -> dict[str, tuple]:
    by_param = {}
    for group in optimizer.param_groups:
        for p in group["params"]:
            by_param[id(p)] = (group["lr"], group["weight_decay"])
    return {name: by_param[id(p)] for name, p in model.named_parameters() if id(p) in by_param}


def test_layer_decay_scales_and_learning_rates(make_tiny_model: Callable[..., Sam2Model]) -> None:
    model = make_tiny_model()
    config = TrainConfig(steps=10, base_lr=1.0, vision_lr=0.5, layer_decay=0.9)
    groups = _lr_and_decay(build_optimizer(model, config), model)
    num_blocks = len(model.image_encoder.trunk.blocks)  # 4 in test_tiny: L + 1 = 5
    assert num_blocks == 4
    trunk = "image_encoder.trunk."
    assert groups[trunk + "patch_embed.proj.weight"][0] == pytest.approx(0.5 * 0.9**5)
    for i in range(num_blocks):
        expected = 0.5 * 0.9 ** (num_blocks - i)
        assert groups[f"{trunk}blocks.{i}.attn.qkv.weight"][0] == pytest.approx(expected)
    assert groups[trunk + "pos_embed"][0] == pytest.approx(0.5)
    assert groups[trunk + "pos_embed_window"][0] == pytest.approx(0.5)
    neck = [n for n in groups if n.startswith("image_encoder.neck.")]
    assert neck
    assert all(groups[n][0] == pytest.approx(0.5) for n in neck)
    assert groups["memory_attention.layers.0.self_attn.q_proj.weight"][0] == pytest.approx(1.0)
    assert groups["sam_mask_decoder.conv_s0.weight"][0] == pytest.approx(1.0)


def test_no_weight_decay_for_biases_and_norms(make_tiny_model: Callable[..., Sam2Model]) -> None:
    model = make_tiny_model()
    groups = _lr_and_decay(build_optimizer(model, TrainConfig(steps=1)), model)
    assert len(groups) == sum(1 for _ in model.parameters())
    for name, (_, decay) in groups.items():
        norm = ".norm" in name or "norm1" in name or "norm2" in name or "norm3" in name
        if name.endswith("bias") or norm:
            assert decay == 0.0, name
    assert groups["image_encoder.trunk.blocks.0.norm1.weight"][1] == 0.0
    assert groups["sam_mask_decoder.output_upscaling.1.weight"][1] == 0.0  # LayerNorm2d
    assert groups["image_encoder.trunk.blocks.0.attn.qkv.weight"][1] == 0.1
    assert groups["no_mem_embed"][1] == 0.1
    assert groups["image_encoder.trunk.pos_embed"][1] == 0.1


def test_frozen_image_encoder_is_not_optimised(make_tiny_model: Callable[..., Sam2Model]) -> None:
    model = make_tiny_model()
    optimizer = build_optimizer(model, TrainConfig(steps=1, freeze_image_encoder=True))
    groups = _lr_and_decay(optimizer, model)
    assert groups
    assert not any(n.startswith("image_encoder.") for n in groups)


def test_cosine_schedule_ends_at_a_tenth() -> None:
    assert cosine_lr(1.0, 0, 100, 0.1) == pytest.approx(1.0)
    assert cosine_lr(1.0, 50, 100, 0.1) == pytest.approx(0.55)
    assert cosine_lr(1.0, 100, 100, 0.1) == pytest.approx(0.1)
    assert cosine_lr(1.0, 25, 100, 0.1) == pytest.approx(0.1 + 0.45 * (1 + math.cos(math.pi / 4)))


def test_set_learning_rates_applies_scales(make_tiny_model: Callable[..., Sam2Model]) -> None:
    model = make_tiny_model()
    config = TrainConfig(steps=4, base_lr=2.0, vision_lr=1.0)
    optimizer = build_optimizer(model, config)
    assert set_learning_rates(optimizer, config, 2) == pytest.approx(cosine_lr(2.0, 2, 4, 0.1))
    groups = _lr_and_decay(optimizer, model)
    assert groups["no_mem_embed"][0] == pytest.approx(1.1)
    assert groups["image_encoder.trunk.blocks.3.mlp.layers.0.weight"][0] == pytest.approx(
        0.55 * 0.9
    )


def test_warmup_ramps_linearly_then_follows_the_cosine(
    make_tiny_model: Callable[..., Sam2Model],
) -> None:
    model = make_tiny_model()
    config = TrainConfig(steps=10, base_lr=1.0, vision_lr=0.5, warmup_steps=4)
    optimizer = build_optimizer(model, config)
    rates = [set_learning_rates(optimizer, config, step) for step in range(10)]
    for step in range(4):
        assert rates[step] == pytest.approx((step + 1) / 4 * cosine_lr(1.0, step, 10, 0.1))
    for step in range(4, 10):
        assert rates[step] == pytest.approx(cosine_lr(1.0, step, 10, 0.1))
    with pytest.raises(ValueError, match="warmup_steps"):
        TrainConfig(steps=10, warmup_steps=-1)
