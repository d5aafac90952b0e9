"""Memory encoder: fuses a frame's features with its predicted mask into a memory."""

from __future__ import annotations

import math

import torch
from torch import nn

from model._bf16 import Conv2d, Linear
from model._layers import LayerNorm2d, drop_path_or_identity, is_expanded
from model.position_encoding import PositionEmbeddingSine


class MaskDownSampler(nn.Module):
    """`[B, 1, S, S]` mask -> `[B, embed_dim, S/total_stride, ...]` via strided convs
    (channels x stride**2 each step), each followed by LayerNorm2d and GELU, then a 1x1 conv.
    The layers sit in one `nn.Sequential` named `encoder`, as in the checkpoints."""

    def __init__(
        self,
        embed_dim: int = 256,
        kernel_size: int = 3,
        stride: int = 2,
        padding: int = 1,
        total_stride: int = 16,
    ) -> None:
        super().__init__()
        num_layers = int(math.log2(total_stride) // math.log2(stride))
        if stride**num_layers != total_stride:
            raise ValueError("total_stride must be a power of stride")
        self.encoder = nn.Sequential()
        in_chans = 1
        for _ in range(num_layers):
            out_chans = in_chans * stride**2
            self.encoder.append(
                Conv2d(in_chans, out_chans, kernel_size=kernel_size, stride=stride, padding=padding)
            )
            self.encoder.append(LayerNorm2d(out_chans))
            self.encoder.append(nn.GELU())
            in_chans = out_chans
        self.encoder.append(Conv2d(in_chans, embed_dim, kernel_size=1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.encoder(x)


class CXBlock(nn.Module):
    """ConvNeXt block on `[B, C, H, W]`: depthwise 7x7, LayerNorm2d, MLP (as Linears, channels
    last), layer scale `gamma`, residual."""

    def __init__(
        self,
        dim: int,
        kernel_size: int = 7,
        padding: int = 3,
        drop_path: float = 0.0,
        layer_scale_init_value: float = 1e-6,
        use_dwconv: bool = True,
    ) -> None:
        super().__init__()
        self.dwconv = Conv2d(
            dim, dim, kernel_size=kernel_size, padding=padding, groups=dim if use_dwconv else 1
        )
        self.norm = LayerNorm2d(dim, eps=1e-6)
        self.pwconv1 = Linear(dim, 4 * dim)
        self.act = nn.GELU()
        self.pwconv2 = Linear(4 * dim, dim)
        self.gamma = (
            nn.Parameter(layer_scale_init_value * torch.ones(dim))
            if layer_scale_init_value > 0
            else None
        )
        self.drop_path = drop_path_or_identity(drop_path)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        residual = x
        # channels last, made contiguous: Linear on the permuted view is several times slower
        # (bf16 most of all)
        x = self.norm(self.dwconv(x)).permute(0, 2, 3, 1).contiguous()  # -> [B, H, W, C]
        x = self.pwconv2(self.act(self.pwconv1(x)))
        if self.gamma is not None:
            x = self.gamma * x
        return residual + self.drop_path(x.permute(0, 3, 1, 2))


class Fuser(nn.Module):
    """A stack of `CXBlock`s (`layers.N`); `proj` is an identity in all SAM 2.1 configs."""

    def __init__(self, dim: int = 256, num_layers: int = 2) -> None:
        super().__init__()
        self.proj = nn.Identity()
        self.layers = nn.ModuleList(CXBlock(dim) for _ in range(num_layers))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.proj(x)
        for layer in self.layers:
            x = layer(x)
        return x


class MemoryEncoder(nn.Module):
    """pix_feat `[B, in_dim, h, w]` (stride 16) + masks `[B, 1, 16h, 16w]` ->
    `{"vision_features": [B, out_dim, h, w], "vision_pos_enc": [[B, out_dim, h, w]]}`."""

    def __init__(self, out_dim: int = 64, in_dim: int = 256) -> None:
        super().__init__()
        self.mask_downsampler = MaskDownSampler(embed_dim=in_dim)
        self.pix_feat_proj = Conv2d(in_dim, in_dim, kernel_size=1)
        self.fuser = Fuser(in_dim, num_layers=2)
        self.position_encoding = PositionEmbeddingSine(out_dim)
        self.out_proj: nn.Module = (
            Conv2d(in_dim, out_dim, kernel_size=1) if out_dim != in_dim else nn.Identity()
        )

    def forward(
        self, pix_feat: torch.Tensor, masks: torch.Tensor, skip_mask_sigmoid: bool = False
    ) -> dict[str, torch.Tensor | list[torch.Tensor]]:
        if not skip_mask_sigmoid:
            masks = torch.sigmoid(masks)
        masks = self.mask_downsampler(masks)
        pix_feat = pix_feat.to(masks.device)
        if is_expanded(pix_feat, 0):
            # objects tracked together share the frame's features (expanded): project them once
            x = self.pix_feat_proj(pix_feat[:1]) + masks
        else:
            x = self.pix_feat_proj(pix_feat) + masks
        x = self.out_proj(self.fuser(x))
        pos = self.position_encoding(x, dtype=x.dtype)
        return {"vision_features": x, "vision_pos_enc": [pos]}
