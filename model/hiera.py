"""Hiera trunk (hierarchical windowed ViT) of the SAM 2 image encoder.

Stage i works at stride 4 * 2**i. The first block of stages 2.. halves the resolution by max-pooling
its queries (and the projected shortcut); channels and heads grow by `dim_mul` / `head_mul` there.

Without autograd (inference) a block runs on row bands of whole windows, one after the other: every
window and token sees exactly the same operations as in the whole-image pass, but the block's large
intermediates (qkv, MLP hidden) stay small and cache-resident instead of being freshly allocated
(page-faulted) and streamed through memory at full-image size.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.modules.utils import _pair

from model._bf16 import Conv2d, Linear
from model._layers import MLP, DropPath, drop_path_or_identity
from model.config import HieraConfig

# Tokens per band / chunk in the inference path. Large enough for efficient GEMMs (and for the
# same bf16 GEMM kernels as the whole-image call), small enough to stay in cache.
BAND_TOKENS = 4096


def window_partition(x: torch.Tensor, window: int) -> tuple[torch.Tensor, tuple[int, int]]:
    """`[B, H, W, C]` -> contiguous `[B * nWin, window, window, C]`, zero-padding H and W up to
    multiples of `window`. Also returns the padded size `(Hp, Wp)`."""
    b, h, w, c = x.shape
    pad_h = (window - h % window) % window
    pad_w = (window - w % window) % window
    if pad_h or pad_w:
        x = F.pad(x, (0, 0, 0, pad_w, 0, pad_h))
    hp, wp = h + pad_h, w + pad_w
    x = x.view(b, hp // window, window, wp // window, window, c)
    # (a single row of windows would give a strided view: Linear is slow on those)
    windows = x.permute(0, 1, 3, 2, 4, 5).reshape(-1, window, window, c).contiguous()
    return windows, (hp, wp)


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


def _pool_channels_last(x: torch.Tensor, pool: nn.MaxPool2d) -> torch.Tensor:
    """Apply `pool` (kernel == stride, no padding) to a channels-last `[B, H, W, C]` tensor.

    Without autograd this is the elementwise max of the strided cell views (same values, no
    layout copy and no index tensor); with autograd it is the module itself.
    """
    if torch.is_grad_enabled():
        return pool(x.permute(0, 3, 1, 2)).permute(0, 2, 3, 1)
    sh, sw = _pair(pool.kernel_size)
    x = x[:, : x.shape[1] // sh * sh, : x.shape[2] // sw * sw]
    cells = [x[:, i::sh, j::sw] for i in range(sh) for j in range(sw)]
    if len(cells) == 1:
        return cells[0].contiguous()
    out = torch.maximum(cells[0], cells[1])
    for cell in cells[2:]:
        torch.maximum(out, cell, out=out)
    return out


def _add_unpartitioned(
    shortcut: torch.Tensor,
    attn: torch.Tensor,
    window: int,
    padded_hw: tuple[int, int],
    out: torch.Tensor,
) -> None:
    """`out = shortcut + window_unpartition(attn)` (`out`, `shortcut`: `[B, H, W, C]`), reading the
    windows in place instead of materialising the unpartitioned map when there is no padding."""
    b, h, w, c = out.shape
    if window == 0:
        torch.add(shortcut, attn, out=out)
    elif padded_hw != (h, w):
        torch.add(shortcut, window_unpartition(attn, window, padded_hw, (h, w)), out=out)
    else:
        grid = (b, h // window, window, w // window, window, c)
        windows = attn.view(b, h // window, w // window, window, window, c).transpose(2, 3)
        torch.add(shortcut.reshape(grid), windows, out=out.view(grid))


class PatchEmbed(nn.Module):
    """7x7 stride-4 conv: `[B, 3, S, S]` -> `[B, S/4, S/4, C]` (channels last, contiguous on
    CPU)."""

    def __init__(self, embed_dim: int, in_chans: int = 3) -> None:
        super().__init__()
        self.proj = Conv2d(in_chans, embed_dim, kernel_size=7, stride=4, padding=3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.device.type == "cpu":
            # a channels-last input makes the conv write channels-last directly (same values)
            x = x.contiguous(memory_format=torch.channels_last)
        return self.proj(x).permute(0, 2, 3, 1)


class MultiScaleAttention(nn.Module):
    """Multi-head self-attention on `[B, H, W, dim]` tokens with optional query pooling.

    Output `[B, H', W', dim_out]` where (H', W') is the pooled size when `q_pool` is set.
    """

    def __init__(
        self, dim: int, dim_out: int, num_heads: int, q_pool: nn.MaxPool2d | None = None
    ) -> None:
        super().__init__()
        self.num_heads = num_heads
        self.q_pool = q_pool
        self.qkv = Linear(dim, dim_out * 3)
        self.proj = Linear(dim_out, dim_out)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, h, w, _ = x.shape
        qkv = self.qkv(x).reshape(b, h * w, 3, self.num_heads, -1)
        q, k, v = qkv.unbind(2)  # each [B, HW, heads, hd], views of qkv
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
    Without autograd (and without an active drop path) it runs `_forward_banded`: same values,
    in-place residuals, one contiguous `[B, H', W', dim_out]` output.
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
        self.pool: nn.MaxPool2d | None = None
        if q_stride is not None:
            self.pool = nn.MaxPool2d(kernel_size=q_stride, stride=q_stride, ceil_mode=False)
        self.attn = MultiScaleAttention(dim, dim_out, num_heads, q_pool=self.pool)
        self.drop_path = drop_path_or_identity(drop_path)
        self.norm2 = nn.LayerNorm(dim_out, eps=1e-6)
        self.mlp = MLP(dim_out, int(dim_out * mlp_ratio), dim_out, 2, activation=nn.GELU)
        if dim != dim_out:
            self.proj = Linear(dim, dim_out)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if torch.is_grad_enabled() or (isinstance(self.drop_path, DropPath) and self.training):
            shortcut, attn, window, padded_hw = self._attention(x)
            if window > 0:
                hw = (shortcut.shape[1], shortcut.shape[2])
                attn = window_unpartition(attn, window, padded_hw, hw)
            x = shortcut + self.drop_path(attn)
            return x + self.drop_path(self.mlp(self.norm2(x)))
        return self._forward_banded(x)

    def _attention(
        self, x: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, int, tuple[int, int]]:
        """`[B, H, W, dim]` -> `(shortcut, attention, window, padded_hw)`.

        `shortcut` is `[B, H', W', dim_out]`; `attention` is the attention branch, either the
        `[B * nWin, window, window, dim_out]` windows of a padded `padded_hw` grid (window > 0)
        or a `[B, H', W', dim_out]` map (window == 0).
        """
        shortcut = x
        x = self.norm1(x)
        if self.dim != self.dim_out:
            shortcut = self.proj(x)
            if self.pool is not None:
                shortcut = _pool_channels_last(shortcut, self.pool)
        window = self.window_size
        if window == 0:
            return shortcut, self.attn(x), 0, (0, 0)
        x, padded_hw = window_partition(x, window)
        x = self.attn(x)
        if self.q_stride is not None:
            # queries were pooled inside each window: windows and the grid shrank
            window //= self.q_stride[0]
            h, w = shortcut.shape[1], shortcut.shape[2]
            padded_hw = (h + (window - h % window) % window, w + (window - w % window) % window)
        return shortcut, x, window, padded_hw

    def _forward_banded(self, x: torch.Tensor) -> torch.Tensor:
        """The block (no autograd, no drop path) over row bands of whole windows: the same values
        as one pass, with small cache-resident intermediates; written into one output."""
        out: torch.Tensor | None = None
        for src, dst in self._bands(x):
            shortcut, attn, window, padded_hw = self._attention(x[src])
            if out is None:
                size = self._output_size(x)
                dtype = torch.result_type(shortcut, attn)
                out = shortcut.new_empty((x.shape[0], *size, self.dim_out), dtype=dtype)
            _add_unpartitioned(shortcut, attn, window, padded_hw, out[dst])
            self._mlp_residual_(out[dst])
        assert out is not None
        return out

    def _output_size(self, x: torch.Tensor) -> tuple[int, int]:
        """(H', W') of the output for input `[B, H, W, dim]`: H // stride (floor) when pooling."""
        h, w = x.shape[1], x.shape[2]
        if self.q_stride is None:
            return h, w
        return h // self.q_stride[0], w // self.q_stride[1]

    def _bands(self, x: torch.Tensor) -> list[tuple[tuple[slice, slice], tuple[slice, slice]]]:
        """(input, output) index pairs of the bands: on CPU, per image, whole window rows of
        about BAND_TOKENS tokens. One band of the whole batch for global attention, small maps
        and other devices (on a GPU more, smaller kernels would only cost launches)."""
        b, h, w, _ = x.shape
        window = self.window_size
        stride = 1 if self.q_stride is None else self.q_stride[0]
        if x.device.type != "cpu" or window == 0 or window % stride or h * w <= BAND_TOKENS:
            return [((slice(None), slice(None)), (slice(None), slice(None)))]
        window_rows = -(-h // window)
        per_band = max(1, BAND_TOKENS // (window * w))
        bands_per_image = -(-window_rows // per_band)
        rows = window * -(-window_rows // bands_per_image)  # balanced: no sliver of a last band
        bands = []
        for i in range(b):
            for top in range(0, h, rows):
                bottom = min(top + rows, h)
                src = (slice(i, i + 1), slice(top, bottom))
                dst = (slice(i, i + 1), slice(top // stride, bottom // stride))
                bands.append((src, dst))
        return bands

    def _mlp_residual_(self, x: torch.Tensor) -> None:
        """`x += mlp(norm2(x))` in place (token chunks on CPU); `x`: contiguous `[..., dim_out]`."""
        tokens = x.view(-1, x.shape[-1])
        for chunk in tokens.split(BAND_TOKENS) if x.device.type == "cpu" else (tokens,):
            chunk.add_(self.mlp(self.norm2(chunk)))


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
        # (key, [1, H, W, C]) of the last position embedding computed without autograd
        self._pos_cache: tuple[tuple[object, ...], torch.Tensor] | None = None

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
        """`[1, H, W, C]` contiguous: background embedding resized bicubically plus the tiled
        window one. Cached without autograd, keyed on the parameters' storage and version."""
        if torch.is_grad_enabled():
            return self._compute_pos_embed(hw)
        params = (self.pos_embed, self.pos_embed_window)
        key = (hw, *((p.device, p.dtype, p.data_ptr(), p._version) for p in params))
        if self._pos_cache is None or self._pos_cache[0] != key:
            self._pos_cache = (key, self._compute_pos_embed(hw))
        return self._pos_cache[1]

    def _compute_pos_embed(self, hw: tuple[int, int]) -> torch.Tensor:
        pos = F.interpolate(self.pos_embed, size=hw, mode="bicubic")
        window = self.pos_embed_window
        tiles = [p // q for p, q in zip(pos.shape, window.shape)]
        return (pos + window.tile(tiles)).permute(0, 2, 3, 1).contiguous()

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        x = self.patch_embed(x)
        pos = self._pos_embed((x.shape[1], x.shape[2]))
        if torch.is_grad_enabled() or torch.result_type(x, pos) != x.dtype:
            x = x + pos
        else:
            x += pos  # the fresh conv output (not under autocast: bf16 + fp32 gives fp32)
        outputs = []
        for i, block in enumerate(self.blocks):
            x = block(x)
            if i in self.stage_ends:
                outputs.append(x.permute(0, 3, 1, 2))
        return outputs
