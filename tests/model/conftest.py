"""Shared fixtures for the model tests: tiny configs/models, official-vs-ours model pairs."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any
from unittest import mock

import pytest
import torch

from model.config import OFFICIAL_YAML, Sam2Config, get_config
from model.sam2_base import Sam2Model

PARITY_IMAGE_SIZE = 256


@pytest.fixture(scope="session")
def tiny_config() -> Sam2Config:
    """4-block Hiera (embed 16) at image size 128, 2 memory-attention layers."""
    return get_config("test_tiny")


def _randomized(model: Sam2Model, seed: int) -> Sam2Model:
    """Add noise to every parameter/buffer: official inits leave some at zero (pos_embed...),
    which would hide ordering bugs."""
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for tensor in model.state_dict().values():
            if tensor.is_floating_point():
                tensor.add_(torch.randn(tensor.shape, generator=generator) * 0.05)
    return model


@pytest.fixture(scope="session")
def tiny_model(tiny_config: Sam2Config) -> Sam2Model:
    torch.manual_seed(0)
    return _randomized(Sam2Model(tiny_config), seed=1).eval()


@pytest.fixture(scope="session")
def make_tiny_model(tiny_config: Sam2Config) -> Callable[..., Sam2Model]:
    """Factory for fresh tiny models (seeded) so tests can mutate them."""

    def make(seed: int = 0, **overrides: Any) -> Sam2Model:
        from dataclasses import replace

        torch.manual_seed(seed)
        config = replace(tiny_config, **overrides) if overrides else tiny_config
        return _randomized(Sam2Model(config), seed=seed + 1).eval()

    return make


@contextmanager
def official_on_meta_device() -> Iterator[None]:
    """Build official models on the meta device (no memory, no init cost). Hiera calls
    `.item()` on a linspace, which meta tensors refuse, so that one goes to the CPU."""
    original = torch.linspace

    def cpu_linspace(*args: Any, **kwargs: Any) -> torch.Tensor:
        kwargs["device"] = "cpu"
        return original(*args, **kwargs)

    with torch.device("meta"), mock.patch("torch.linspace", cpu_linspace):
        yield


def build_official(
    name: str,
    *,
    image_size: int | None = None,
    video: bool = False,
    apply_postprocessing: bool = True,
    device: str = "cpu",
    ckpt_path: str | None = None,
) -> Any:
    """Meta's model for our config `name` (SAM2Base, or SAM2VideoPredictor with `video`)."""
    build_sam = pytest.importorskip("sam2.build_sam")
    overrides = [f"++model.image_size={image_size}"] if image_size else []
    builder = build_sam.build_sam2_video_predictor if video else build_sam.build_sam2
    return builder(
        config_file=OFFICIAL_YAML[name],
        ckpt_path=ckpt_path,
        device=device,
        hydra_overrides_extra=overrides,
        apply_postprocessing=apply_postprocessing,
    )


def force_object_presence(model: Any, bias: float) -> None:
    """Set the object-score head's output bias: > 0 makes objects present, < 0 absent."""
    with torch.no_grad():
        model.sam_mask_decoder.pred_obj_score_head.layers[2].bias.fill_(bias)


@pytest.fixture(scope="session")
def official_pair() -> tuple[Any, Sam2Model]:
    """(official SAM2Base, our Sam2Model) for hiera_t at 256 px with identical random weights."""
    pytest.importorskip("sam2")
    from model.build import build_sam2

    torch.manual_seed(0)
    # the video builder's model settings = our build_sam2(apply_postprocessing=True)
    official = build_official("sam2.1_hiera_t", image_size=PARITY_IMAGE_SIZE, video=True)
    ours = build_sam2(get_config("sam2.1_hiera_t", PARITY_IMAGE_SIZE))
    generator = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for tensor in official.state_dict().values():
            tensor.add_(torch.randn(tensor.shape, generator=generator) * 0.05)
        # random weights would judge every object absent (all masks -1024), hiding the mask path
        force_object_presence(official, 30.0)
    ours.load_state_dict(official.state_dict(), strict=True)
    return official.eval(), ours.eval()
