"""Hiera trunk (hierarchical windowed ViT) of the SAM 2 image encoder.

Stage i works at stride 4 * 2**i. The first block of stages 2.. halves the resolution by max-pooling
its queries (and the projected shortcut); channels and heads grow by `dim_mul` / `head_mul` there.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from model._layers import MLP, drop_path_or_identity
from model.config import HieraConfig


def window_partition(x: torch.Tensor, window: int) -> tuple[torch.Tensor, tuple[int, int]]:
    """`[B, H, W, C]` -> `[B * nWin, window, window, C]`, zero-padding H and W up to multiples
    of `window`. Also returns the padded size `(Hp, Wp)`."""
    b, h, w, c = x.shape
    pad_h = (window - h % window) % window
    pad_w = (window - w % window) % window
    if pad_h or pad_w:
        x = F.pad(x, (0, 0, 0, pad_w, 0, pad_h))
    hp, wp = h + pad_h, w + pad_w
    x = x.view(b, hp // window, window, wp // window, window, c)
    return x.permute(0, 1, 3, 2, 4, 5).reshape(-1, window, window, c), (hp, wp)


def window_unpartition(
    windows: torch.Tensor, window: int, padded_hw: tuple[int, int], hw: tuple[int, int]
) -> torch.Tensor:
    """Inverse of `window_partition`: `[B * nWin, window, window, C]` -> `[B, H, W, C]`."""
    hp, wp = padded_hw
    h, w = hw
    b = windows.shape[0] // ((hp // window) * (wp // window))
    x = windows.reshape(b, hp // window, wp // window, window, window, -1)
    x = x.permute(0, 1, 3, 2, 4, 5).reshape(b, hp, wp, -1)
    if hp > h or wp > w:
        x = x[:, :h, :w, :]
    return x


def _pool_channels_last(x: torch.Tensor, pool: nn.Module) -> torch.Tensor:
    """Apply a 2-D pooling module to a channels-last `[B, H, W, C]` tensor."""
    return pool(x.permute(0, 3, 1, 2)).permute(0, 2, 3, 1)


class PatchEmbed(nn.Module):
    """7x7 stride-4 conv: `[B, 3, S, S]` -> `[B, S/4, S/4, C]` (channels last)."""

    def __init__(self, embed_dim: int, in_chans: int = 3) -> None:
        super().__init__()
        self.proj = nn.Conv2d(in_chans, embed_dim, kernel_size=7, stride=4, padding=3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.proj(x).permute(0, 2, 3, 1)


class MultiScaleAttention(nn.Module):
    """Multi-head self-attention on `[B, H, W, dim]` tokens with optional query pooling.

    Output `[B, H', W', dim_out]` where (H', W') is the pooled size when `q_pool` is set.
    """

    def __init__(
        self, dim: int, dim_out: int, num_heads: int, q_pool: nn.Module | None = None
    ) -> None:
        super().__init__()
        self.num_heads = num_heads
        self.q_pool = q_pool
        self.qkv = nn.Linear(dim, dim_out * 3)
        self.proj = nn.Linear(dim_out, dim_out)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, h, w, _ = x.shape
        qkv = self.qkv(x).reshape(b, h * w, 3, self.num_heads, -1)
        q, k, v = qkv.unbind(2)  # each [B, HW, heads, hd]
        if self.q_pool is not None:
            q = _pool_channels_last(q.reshape(b, h, w, -1), self.q_pool)
            h, w = q.shape[1:3]
            q = q.reshape(b, h * w, self.num_heads, -1)
        out = F.scaled_dot_product_attention(
            q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2)
        )
        out = out.transpose(1, 2).reshape(b, h, w, -1)
        return self.proj(out)


class MultiScaleBlock(nn.Module):
    """Pre-norm transformer block on `[B, H, W, dim]` tokens, windowed unless `window_size` is 0.

    With `q_stride` the block halves H and W (pooled queries, pooled projected shortcut).
    """

    def __init__(
        self,
        dim: int,
        dim_out: int,
        num_heads: int,
        mlp_ratio: float = 4.0,
        drop_path: float = 0.0,
        q_stride: tuple[int, int] | None = None,
        window_size: int = 0,
    ) -> None:
        super().__init__()
        self.dim = dim
        self.dim_out = dim_out
        self.window_size = window_size
        self.q_stride = q_stride
        self.norm1 = nn.LayerNorm(dim, eps=1e-6)
        self.pool: nn.Module | None = None
        if q_stride is not None:
            self.pool = nn.MaxPool2d(kernel_size=q_stride, stride=q_stride, ceil_mode=False)
        self.attn = MultiScaleAttention(dim, dim_out, num_heads, q_pool=self.pool)
        self.drop_path = drop_path_or_identity(drop_path)
        self.norm2 = nn.LayerNorm(dim_out, eps=1e-6)
        self.mlp = MLP(dim_out, int(dim_out * mlp_ratio), dim_out, 2, activation=nn.GELU)
        if dim != dim_out:
            self.proj = nn.Linear(dim, dim_out)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        shortcut = x
        x = self.norm1(x)
        if self.dim != self.dim_out:
            shortcut = self.proj(x)
            if self.pool is not None:
                shortcut = _pool_channels_last(shortcut, self.pool)

        window = self.window_size
        h, w = x.shape[1], x.shape[2]
        padded_hw = (h, w)
        if window > 0:
            x, padded_hw = window_partition(x, window)
        x = self.attn(x)
        if self.q_stride is not None and self.window_size > 0:
            # queries were pooled inside each window: windows and the grid shrank
            window = self.window_size // self.q_stride[0]
            h, w = shortcut.shape[1], shortcut.shape[2]
            padded_hw = (h + (window - h % window) % window, w + (window - w % window) % window)
        if self.window_size > 0:
            x = window_unpartition(x, window, padded_hw, (h, w))

        x = shortcut + self.drop_path(x)
        return x + self.drop_path(self.mlp(self.norm2(x)))


class Hiera(nn.Module):
    """Hiera trunk: `[B, 3, S, S]` -> one feature map per stage, `[B, C_i, S/(4*2**i), ...]`,
    highest resolution first."""

    def __init__(self, config: HieraConfig) -> None:
        super().__init__()
        self.config = config
        self.stage_ends = list(config.stage_ends)
        self.q_pool_blocks = [end + 1 for end in self.stage_ends[:-1]][: config.q_pool]
        self.patch_embed = PatchEmbed(config.embed_dim)
        window0 = config.window_spec[0]
        self.pos_embed = nn.Parameter(
            torch.zeros(1, config.embed_dim, *config.window_pos_embed_bkg_spatial_size)
        )
        self.pos_embed_window = nn.Parameter(torch.zeros(1, config.embed_dim, window0, window0))

        # stochastic depth grows linearly over the blocks (plain floats: works on the meta device)
        last = max(config.depth - 1, 1)
        drop_rates = [config.drop_path_rate * i / last for i in range(config.depth)]
        dim, heads, stage = config.embed_dim, config.num_heads, 0
        self.blocks = nn.ModuleList()
        for i in range(config.depth):
            dim_out = dim
            # The window size lags one block behind the stage: the first block of a stage
            # still uses the previous stage's window (it pools the queries within it).
            window = 0 if i in config.global_att_blocks else config.window_spec[stage]
            if i - 1 in self.stage_ends:
                dim_out = int(dim * config.dim_mul)
                heads = int(heads * config.head_mul)
                stage += 1
            self.blocks.append(
                MultiScaleBlock(
                    dim=dim,
                    dim_out=dim_out,
                    num_heads=heads,
                    drop_path=drop_rates[i],
                    q_stride=config.q_stride if i in self.q_pool_blocks else None,
                    window_size=window,
                )
            )
            dim = dim_out
        self.channel_list = [self.blocks[i].dim_out for i in self.stage_ends[::-1]]

    def _pos_embed(self, hw: tuple[int, int]) -> torch.Tensor:
        """`[1, H, W, C]`: background embedding resized bicubically plus the tiled window one."""
        pos = F.interpolate(self.pos_embed, size=hw, mode="bicubic")
        window = self.pos_embed_window
        tiles = [p // q for p, q in zip(pos.shape, window.shape)]
        return (pos + window.tile(tiles)).permute(0, 2, 3, 1)

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        x = self.patch_embed(x)
        x = x + self._pos_embed((x.shape[1], x.shape[2]))
        outputs = []
        for i, block in enumerate(self.blocks):
            x = block(x)
            if i in self.stage_ends:
                outputs.append(x.permute(0, 3, 1, 2))
        return outputs
