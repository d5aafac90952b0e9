"""Image encoder: Hiera trunk + FPN neck with sine position encodings."""

from __future__ import annotations

from collections.abc import Sequence
from typing import cast

import torch
import torch.nn.functional as F
from torch import nn

from model._bf16 import Conv2d, emulating_bf16
from model.hiera import Hiera
from model.position_encoding import PositionEmbeddingSine


class FpnNeck(nn.Module):
    """Projects each trunk stage to `d_model` channels with a 1x1 conv; levels listed in
    `fpn_top_down_levels` also add the 2x-upsampled coarser level.

    `convs[j]` handles the j-th *lowest*-resolution stage (matching the official key layout
    `convs.j.conv`). Returns `(features, pos)`: per level `[B, d_model, H_i, W_i]`, highest
    resolution first, and the matching sine encodings (same dtype as the features).
    """

    def __init__(
        self,
        d_model: int,
        backbone_channel_list: Sequence[int],
        fpn_top_down_levels: Sequence[int] | None = None,
        fpn_interp_mode: str = "nearest",
    ) -> None:
        super().__init__()
        self.d_model = d_model
        self.backbone_channel_list = list(backbone_channel_list)
        self.position_encoding = PositionEmbeddingSine(d_model)
        self.convs = nn.ModuleList()
        for channels in backbone_channel_list:
            level = nn.Sequential()
            level.add_module("conv", Conv2d(channels, d_model, kernel_size=1))
            self.convs.append(level)
        if fpn_top_down_levels is None:
            fpn_top_down_levels = range(len(self.convs))
        self.fpn_top_down_levels = list(fpn_top_down_levels)
        self.fpn_interp_mode = fpn_interp_mode

    def forward(self, xs: list[torch.Tensor]) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
        if len(xs) != len(self.convs):
            raise ValueError(f"expected {len(self.convs)} trunk levels, got {len(xs)}")
        n = len(xs) - 1
        features: list[torch.Tensor] = [torch.empty(0)] * len(xs)
        pos: list[torch.Tensor] = [torch.empty(0)] * len(xs)
        coarser: torch.Tensor | None = None
        for i in range(n, -1, -1):  # coarse to fine
            lateral = self._lateral(n - i, xs[i])
            if i in self.fpn_top_down_levels and coarser is not None:
                top_down = F.interpolate(
                    coarser.to(dtype=torch.float32),
                    scale_factor=2.0,
                    mode=self.fpn_interp_mode,
                    align_corners=None if self.fpn_interp_mode == "nearest" else False,
                    antialias=False,
                )
                coarser = lateral + top_down
            else:
                coarser = lateral
            features[i] = coarser
            pos[i] = self.position_encoding(coarser, coarser.dtype)
        return features, pos

    def _lateral(self, j: int, x: torch.Tensor) -> torch.Tensor:
        """`convs[j]` (1x1) on a `[B, C, H, W]` trunk map.

        In reduced precision (bf16 autocast, bf16 weights) a channels-last map goes through a
        Linear on its `[B, H, W, C]` view instead: same values, without the conv's layout
        reorders (several times faster); the output is channels-last as the conv's would be.
        The conv is kept in fp32 (a Linear splits its GEMM across threads differently) and where
        bf16 is emulated (the conv then runs in float32, see `model._bf16`).
        """
        conv = cast(nn.Conv2d, self.convs[j].get_submodule("conv"))
        nhwc = x.permute(0, 2, 3, 1)
        device = x.device.type
        autocast = torch.amp.is_autocast_available(device) and torch.is_autocast_enabled(device)
        reduced = autocast or x.dtype in (torch.bfloat16, torch.float16)
        if not (reduced and nhwc.is_contiguous()) or emulating_bf16(x):
            return conv(x)
        return F.linear(nhwc, conv.weight.flatten(1), conv.bias).permute(0, 3, 1, 2)


class ImageEncoder(nn.Module):
    """`[B, 3, S, S]` normalised image -> dict with

    - `backbone_fpn`: list of `[B, d_model, S/4, S/4]`, `[B, d_model, S/8, S/8]`,
      `[B, d_model, S/16, S/16]` (with scalp 1; the stride-32 level is dropped),
    - `vision_pos_enc`: the matching sine encodings,
    - `vision_features`: the last (lowest-resolution kept) level of `backbone_fpn`.
    """

    def __init__(self, trunk: Hiera, neck: FpnNeck, scalp: int = 1) -> None:
        super().__init__()
        if trunk.channel_list != neck.backbone_channel_list:
            raise ValueError(
                f"trunk channels {trunk.channel_list} != neck channels {neck.backbone_channel_list}"
            )
        self.trunk = trunk
        self.neck = neck
        self.scalp = scalp

    def forward(self, sample: torch.Tensor) -> dict[str, torch.Tensor | list[torch.Tensor]]:
        features, pos = self.neck(self.trunk(sample))
        if self.scalp > 0:
            features, pos = features[: -self.scalp], pos[: -self.scalp]
        return {"vision_features": features[-1], "vision_pos_enc": pos, "backbone_fpn": features}
