"""The training forward pass of a clip (model/training/forward.py)."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch

from model.sam2_base import Sam2Model
from model.training.clips import prepare_sample
from model.training.forward import forward_clip
from model.training.prompts import PromptPlan
from model.training.synthetic import moving_discs_clips


def _run(model: Sam2Model, plan: PromptPlan, clicks: int) -> tuple[list, torch.Tensor]:
    clip = moving_discs_clips(1, seed=3, num_frames=3, size=128)[0]
    sample = prepare_sample(clip, 128, 3, 3, np.random.default_rng(0))
    frames = forward_clip(
        model,
        sample,
        plan,
        correction_clicks=clicks,
        prob_click_from_gt=0.0,
        add_corrected_frames_as_cond=True,
        rng=np.random.default_rng(1),
        generator=torch.Generator().manual_seed(2),
    )
    return frames, sample.gt_masks


def test_click_plan_steps_and_candidate_counts(make_tiny_model: Callable[..., Sam2Model]) -> None:
    model = make_tiny_model().train()
    plan = PromptPlan(True, (0,), frozenset(), (0, 2))
    frames, gt = _run(model, plan, clicks=3)
    assert [len(steps) for steps in frames] == [4, 1, 4]  # 1 + 3 corrections on frames 0 and 2
    n = gt.shape[1]
    # one click or plain tracking: 3 candidates; 2+ clicks: a single mask
    assert [s.masks.shape[:2] for s in frames[0]] == [(n, 3)] + [(n, 1)] * 3
    assert frames[1][0].masks.shape == (n, 3, 128, 128)
    assert [s.masks.shape[1] for s in frames[2]] == [3, 3, 1, 1]  # tracked, then 1, 2, 3 clicks


def test_mask_prompt_frames_output_the_gt(make_tiny_model: Callable[..., Sam2Model]) -> None:
    model = make_tiny_model().train()
    frames, gt = _run(model, PromptPlan(False, (0, 2), frozenset(), ()), clicks=7)
    assert [len(steps) for steps in frames] == [1, 1, 1]
    for t in (0, 2):
        out = frames[t][0]
        assert torch.equal(out.masks[:, 0] > 0, gt[t])  # +-10 logits from the GT
        assert torch.all(out.ious == 1)
    assert frames[1][0].masks.requires_grad


def test_gradients_reach_the_image_encoder(make_tiny_model: Callable[..., Sam2Model]) -> None:
    model = make_tiny_model().train()
    frames, gt = _run(model, PromptPlan(True, (0,), frozenset({0}), (0,)), clicks=1)
    loss = sum(s.masks.sigmoid().mean() + s.ious.sum() for steps in frames for s in steps)
    assert isinstance(loss, torch.Tensor)
    loss.backward()
    patch = model.image_encoder.trunk.patch_embed.proj.weight.grad
    assert patch is not None
    assert patch.abs().sum() > 0
    memory_attention = dict(model.memory_attention.named_parameters())
    assert memory_attention["layers.0.self_attn.q_proj.weight"].grad is not None


def test_an_image_sample_skips_the_memory_encoder(
    make_tiny_model: Callable[..., Sam2Model],
) -> None:
    # one frame: no later frame reads a memory, so none is encoded (image pre-training)
    model = make_tiny_model().train()
    calls: list[int] = []
    model.memory_encoder.register_forward_hook(lambda *args: calls.append(1))
    clip = moving_discs_clips(1, seed=3, num_frames=3, size=128)[0]
    for num_frames, expected in ((1, 0), (2, 2)):
        calls.clear()
        sample = prepare_sample(clip, 128, num_frames, 3, np.random.default_rng(0))
        frames = forward_clip(
            model,
            sample,
            PromptPlan(True, (0,), frozenset(), (0,)),
            correction_clicks=1,
            prob_click_from_gt=0.0,
            add_corrected_frames_as_cond=True,
            rng=np.random.default_rng(1),
            generator=torch.Generator().manual_seed(2),
        )
        assert len(frames) == num_frames
        assert len(calls) == expected
