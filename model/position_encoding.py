"""Positional encodings: 2-D sine (DETR style), random Fourier (SAM prompts), axial RoPE, 1-D sine.

None of these store tables in the state_dict except the random Fourier matrix
(`positional_encoding_gaussian_matrix`, a persistent buffer as in the official checkpoints).
"""

from __future__ import annotations

import math

import torch
from torch import nn


class PositionEmbeddingSine(nn.Module):
    """Normalised 2-D sine/cosine encoding of a feature map's grid.

    `forward(x)` with `x` `[B, C_any, H, W]` returns `[B, num_pos_feats, H, W]` (float32 unless
    `dtype` is given): the first half of the channels encodes y, the second half x; positions are
    normalised to (0, 2*pi]. Tables are cached per (H, W, device, dtype), not in the state_dict;
    the result is the cached table expanded over the batch (read-only, never modify it in place).
    """

    def __init__(
        self,
        num_pos_feats: int,
        temperature: float = 10000.0,
        normalize: bool = True,
        scale: float | None = None,
    ) -> None:
        super().__init__()
        if num_pos_feats % 2:
            raise ValueError("num_pos_feats must be even")
        if scale is not None and not normalize:
            raise ValueError("scale needs normalize=True")
        self.half_dim = num_pos_feats // 2
        self.temperature = temperature
        self.normalize = normalize
        self.scale = 2 * math.pi if scale is None else scale
        self._cache: dict[tuple[int, int, torch.device, torch.dtype], torch.Tensor] = {}

    def _frequencies(self, device: torch.device) -> torch.Tensor:
        i = torch.arange(self.half_dim, dtype=torch.float32, device=device)
        return self.temperature ** (2 * (i // 2) / self.half_dim)

    def _interleave_sin_cos(self, pos: torch.Tensor) -> torch.Tensor:
        # [..., D] -> [..., D]: sin of even frequencies, cos of odd ones, interleaved
        return torch.stack((pos[..., 0::2].sin(), pos[..., 1::2].cos()), dim=-1).flatten(-2)

    def _table(
        self, height: int, width: int, device: torch.device, dtype: torch.dtype
    ) -> torch.Tensor:
        """`[C, H, W]` encoding of an H x W grid, computed in float32, cast to `dtype`."""
        key = (height, width, device, dtype)
        cached = self._cache.get(key)
        if cached is None:
            # a normal tensor even when first built under inference_mode: training uses it too
            with torch.inference_mode(False):
                cached = self._cache[key] = self._build_table(height, width, device, dtype)
        return cached

    def _build_table(
        self, height: int, width: int, device: torch.device, dtype: torch.dtype
    ) -> torch.Tensor:
        y = torch.arange(1, height + 1, dtype=torch.float32, device=device)
        x = torch.arange(1, width + 1, dtype=torch.float32, device=device)
        if self.normalize:
            eps = 1e-6
            y = y / (y[-1:] + eps) * self.scale
            x = x / (x[-1:] + eps) * self.scale
        freqs = self._frequencies(device)
        pos_y = self._interleave_sin_cos(y[:, None] / freqs)  # [H, D]
        pos_x = self._interleave_sin_cos(x[:, None] / freqs)  # [W, D]
        table = torch.cat(
            (
                pos_y[:, None, :].expand(height, width, -1),
                pos_x[None, :, :].expand(height, width, -1),
            ),
            dim=-1,
        ).permute(2, 0, 1)
        return table.to(dtype).contiguous()

    @torch.no_grad()
    def forward(self, x: torch.Tensor, dtype: torch.dtype = torch.float32) -> torch.Tensor:
        table = self._table(x.shape[-2], x.shape[-1], x.device, dtype)
        return table[None].expand(x.shape[0], -1, -1, -1)


class PositionEmbeddingRandom(nn.Module):
    """Random Fourier features of normalised (x, y) coordinates (SAM's prompt encoding).

    The `[2, num_pos_feats]` Gaussian matrix is a persistent buffer (it is in the checkpoints).
    """

    positional_encoding_gaussian_matrix: torch.Tensor

    def __init__(self, num_pos_feats: int = 64, scale: float | None = None) -> None:
        super().__init__()
        if scale is None or scale <= 0.0:
            scale = 1.0
        self.register_buffer(
            "positional_encoding_gaussian_matrix", scale * torch.randn((2, num_pos_feats))
        )

    def _encode(self, coords: torch.Tensor) -> torch.Tensor:
        """`[..., 2]` coordinates in [0, 1] -> `[..., 2 * num_pos_feats]`."""
        coords = 2 * coords - 1
        coords = coords @ self.positional_encoding_gaussian_matrix
        coords = 2 * math.pi * coords
        return torch.cat([torch.sin(coords), torch.cos(coords)], dim=-1)

    def forward(self, size: tuple[int, int]) -> torch.Tensor:
        """Encoding of every cell centre of an `(h, w)` grid: `[2 * num_pos_feats, h, w]`."""
        h, w = size
        device = self.positional_encoding_gaussian_matrix.device
        ys = (torch.arange(h, dtype=torch.float32, device=device) + 0.5) / h
        xs = (torch.arange(w, dtype=torch.float32, device=device) + 0.5) / w
        grid = torch.stack(
            (xs[None, :].expand(h, w), ys[:, None].expand(h, w)), dim=-1
        )  # [h, w, 2] as (x, y)
        return self._encode(grid).permute(2, 0, 1)

    def forward_with_coords(
        self, coords_input: torch.Tensor, image_size: tuple[int, int]
    ) -> torch.Tensor:
        """`[B, N, 2]` pixel (x, y) coordinates in an image of `(H, W)` -> `[B, N, C]`."""
        coords = coords_input.clone()
        coords[:, :, 0] = coords[:, :, 0] / image_size[1]
        coords[:, :, 1] = coords[:, :, 1] / image_size[0]
        return self._encode(coords.to(torch.float))


def get_1d_sine_pe(pos_inds: torch.Tensor, dim: int, temperature: float = 10000.0) -> torch.Tensor:
    """Transformer sine encoding of positions `[N]` -> `[N, dim]` (sines then cosines)."""
    half = dim // 2
    i = torch.arange(half, dtype=torch.float32, device=pos_inds.device)
    freqs = temperature ** (2 * (i // 2) / half)
    angles = pos_inds.unsqueeze(-1) / freqs
    return torch.cat([angles.sin(), angles.cos()], dim=-1)


def axial_rope_table(
    head_dim: int, width: int, height: int, theta: float = 10000.0
) -> torch.Tensor:
    """Complex axial RoPE table for a `height x width` token grid in row-major order.

    Returns `[height * width, head_dim // 2]` complex64: the first half rotates with the
    token's x, the second half with its y.
    """
    freqs = 1.0 / (theta ** (torch.arange(0, head_dim, 4)[: head_dim // 4].float() / head_dim))
    t = torch.arange(width * height, dtype=torch.float32)
    t_x = t % width
    t_y = torch.div(t, width, rounding_mode="floor")
    angles_x = torch.outer(t_x, freqs)
    angles_y = torch.outer(t_y, freqs)
    cis_x = torch.polar(torch.ones_like(angles_x), angles_x)
    cis_y = torch.polar(torch.ones_like(angles_y), angles_y)
    return torch.cat([cis_x, cis_y], dim=-1)


def apply_rope(x: torch.Tensor, table: torch.Tensor) -> torch.Tensor:
    """Rotate `x` `[B, heads, N, D]` by `table` `[N', D/2]` complex, N a multiple of N'.

    When N > N' (memory keys spanning several frames), the table applies to each block of N'
    tokens (broadcast, not copied). Computed in float32, returned in `x.dtype`.
    """
    b, heads, n, d = x.shape
    if n == 0:
        return x
    repeats = n // table.shape[0]
    if repeats * table.shape[0] != n:
        raise ValueError(f"{n} tokens are not a multiple of the RoPE table's {table.shape[0]}")
    x_complex = torch.view_as_complex(x.float().reshape(b, heads, repeats, -1, d // 2, 2))
    rotated = torch.view_as_real(x_complex * table).reshape(b, heads, n, d)
    return rotated.type_as(x)
