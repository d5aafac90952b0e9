"""Attention layers and SAM's two-way transformer (used by the mask decoder)."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from model._bf16 import Linear
from model._layers import MLP
from model.position_encoding import apply_rope, axial_rope_table


class Attention(nn.Module):
    """Multi-head attention with q/k/v/out projections and an optional internal downsampling.

    q `[B, Nq, embedding_dim]`, k and v `[B, Nk, kv_in_dim]` -> `[B, Nq, embedding_dim]`.
    The heads work in `embedding_dim // downsample_rate` channels.
    """

    def __init__(
        self,
        embedding_dim: int,
        num_heads: int,
        downsample_rate: int = 1,
        dropout: float = 0.0,
        kv_in_dim: int | None = None,
    ) -> None:
        super().__init__()
        self.embedding_dim = embedding_dim
        self.kv_in_dim = kv_in_dim if kv_in_dim is not None else embedding_dim
        self.internal_dim = embedding_dim // downsample_rate
        self.num_heads = num_heads
        if self.internal_dim % num_heads:
            raise ValueError("num_heads must divide embedding_dim // downsample_rate")
        self.q_proj = Linear(embedding_dim, self.internal_dim)
        self.k_proj = Linear(self.kv_in_dim, self.internal_dim)
        self.v_proj = Linear(self.kv_in_dim, self.internal_dim)
        self.out_proj = Linear(self.internal_dim, embedding_dim)
        self.dropout_p = dropout

    def _split_heads(self, x: torch.Tensor) -> torch.Tensor:
        b, n, c = x.shape
        return x.reshape(b, n, self.num_heads, c // self.num_heads).transpose(1, 2)

    def _merge_heads(self, x: torch.Tensor) -> torch.Tensor:
        b, heads, n, hd = x.shape
        return x.transpose(1, 2).reshape(b, n, heads * hd)

    def attend(self, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        """Projected heads `[B, h, N, hd]` -> `[B, Nq, embedding_dim]` (attention, out proj)."""
        dropout_p = self.dropout_p if self.training else 0.0
        out = F.scaled_dot_product_attention(q, k, v, dropout_p=dropout_p)
        return self.out_proj(self._merge_heads(out))

    def forward(self, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        q = self._split_heads(self.q_proj(q))
        k = self._split_heads(self.k_proj(k))
        v = self._split_heads(self.v_proj(v))
        return self.attend(q, k, v)


class RoPEAttention(Attention):
    """Attention with 2-D axial rotary position encoding of queries and keys.

    Queries must form a square token grid (N = s*s, row-major). Keys may span several such grids
    (memories of several frames, `rope_k_repeat=True`); the last `num_k_exclude_rope` keys
    (object-pointer tokens) are not rotated. Tables are cached per grid size and are not in the
    state_dict.
    """

    def __init__(
        self,
        embedding_dim: int,
        num_heads: int,
        downsample_rate: int = 1,
        dropout: float = 0.0,
        kv_in_dim: int | None = None,
        *,
        rope_theta: float = 10000.0,
        rope_k_repeat: bool = False,
    ) -> None:
        super().__init__(embedding_dim, num_heads, downsample_rate, dropout, kv_in_dim)
        self.rope_theta = rope_theta
        self.rope_k_repeat = rope_k_repeat
        self._tables: dict[tuple[int, torch.device], torch.Tensor] = {}

    def _table(self, num_tokens: int, device: torch.device) -> torch.Tensor:
        key = (num_tokens, device)
        table = self._tables.get(key)
        if table is None:
            side = math.isqrt(num_tokens)
            if side * side != num_tokens:
                raise ValueError(f"RoPE needs a square token grid, got {num_tokens} tokens")
            head_dim = self.internal_dim // self.num_heads
            # a normal tensor even when first built under inference_mode: training uses it too
            with torch.inference_mode(False):
                table = axial_rope_table(head_dim, side, side, self.rope_theta).to(device)
            self._tables[key] = table
        return table

    def project_queries(self, q: torch.Tensor) -> torch.Tensor:
        """`[B, N, embedding_dim]` queries on a square grid -> rotated heads `[B, h, N, hd]`."""
        q = self._split_heads(self.q_proj(q))
        return apply_rope(q, self._table(q.shape[-2], q.device))

    def project_keys_values(
        self, k: torch.Tensor, v: torch.Tensor, num_queries: int, num_k_exclude_rope: int = 0
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Keys `[B, Nk, kv_in_dim]` -> rotated heads (the last `num_k_exclude_rope` keys are
        not rotated) and values -> heads, both `[B, h, Nk, hd]`. Keys span whole grids of
        `num_queries` tokens."""
        k = self._split_heads(self.k_proj(k))
        v = self._split_heads(self.v_proj(v))
        if num_queries != k.shape[-2] and not self.rope_k_repeat:
            raise ValueError("queries and keys differ in length; set rope_k_repeat=True")
        table = self._table(num_queries, k.device)
        num_k_rope = k.shape[-2] - num_k_exclude_rope
        if not num_k_exclude_rope:
            return apply_rope(k, table), v
        k_rotated = apply_rope(k[:, :, :num_k_rope], table)
        return torch.cat([k_rotated, k[:, :, num_k_rope:]], dim=2), v

    def forward(
        self,
        q: torch.Tensor,
        k: torch.Tensor,
        v: torch.Tensor,
        num_k_exclude_rope: int = 0,
    ) -> torch.Tensor:
        q_heads = self.project_queries(q)
        k_heads, v_heads = self.project_keys_values(k, v, q_heads.shape[-2], num_k_exclude_rope)
        return self.attend(q_heads, k_heads, v_heads)


def _token_major(x: torch.Tensor) -> torch.Tensor:
    """`[B, C, H, W]` -> contiguous `[B, H*W, C]` (the Linears are slower on permuted views);
    a view, not a copy, when `x` is already laid out token-major in memory."""
    b, c, h, w = x.shape
    return x.permute(0, 2, 3, 1).reshape(b, h * w, c).contiguous()


class TwoWayAttentionBlock(nn.Module):
    """Sparse tokens self-attend, attend to the image, go through an MLP, and the image
    attends back to the tokens. Post-norm, as SAM."""

    def __init__(
        self,
        embedding_dim: int,
        num_heads: int,
        mlp_dim: int = 2048,
        activation: type[nn.Module] = nn.ReLU,
        attention_downsample_rate: int = 2,
        skip_first_layer_pe: bool = False,
    ) -> None:
        super().__init__()
        self.self_attn = Attention(embedding_dim, num_heads)
        self.norm1 = nn.LayerNorm(embedding_dim)
        self.cross_attn_token_to_image = Attention(
            embedding_dim, num_heads, downsample_rate=attention_downsample_rate
        )
        self.norm2 = nn.LayerNorm(embedding_dim)
        self.mlp = MLP(embedding_dim, mlp_dim, embedding_dim, 2, activation=activation)
        self.norm3 = nn.LayerNorm(embedding_dim)
        self.norm4 = nn.LayerNorm(embedding_dim)
        self.cross_attn_image_to_token = Attention(
            embedding_dim, num_heads, downsample_rate=attention_downsample_rate
        )
        self.skip_first_layer_pe = skip_first_layer_pe

    def forward(
        self,
        queries: torch.Tensor,
        keys: torch.Tensor,
        query_pe: torch.Tensor,
        key_pe: torch.Tensor,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        if self.skip_first_layer_pe:
            # the first layer replaces the tokens by their self-attention (no residual)
            queries = self.self_attn(q=queries, k=queries, v=queries)
        else:
            q = queries + query_pe
            queries = queries + self.self_attn(q=q, k=q, v=queries)
        queries = self.norm1(queries)

        q = queries + query_pe
        k = keys + key_pe  # the image-to-token attention below uses it too (keys unchanged)
        queries = self.norm2(queries + self.cross_attn_token_to_image(q=q, k=k, v=keys))
        queries = self.norm3(queries + self.mlp(queries))

        q = queries + query_pe
        keys = self.norm4(keys + self.cross_attn_image_to_token(q=k, k=q, v=queries))
        return queries, keys


class TwoWayTransformer(nn.Module):
    """SAM's two-way transformer.

    `forward(image_embedding [B, C, H, W], image_pe [B or 1, C, H, W], point_embedding
    [B, N, C])` returns `(queries [B, N, C], keys [B, H*W, C])`; an `image_pe` of batch 1 is
    broadcast over the prompts.
    """

    def __init__(
        self,
        depth: int,
        embedding_dim: int,
        num_heads: int,
        mlp_dim: int,
        activation: type[nn.Module] = nn.ReLU,
        attention_downsample_rate: int = 2,
    ) -> None:
        super().__init__()
        self.layers = nn.ModuleList(
            TwoWayAttentionBlock(
                embedding_dim=embedding_dim,
                num_heads=num_heads,
                mlp_dim=mlp_dim,
                activation=activation,
                attention_downsample_rate=attention_downsample_rate,
                skip_first_layer_pe=(i == 0),
            )
            for i in range(depth)
        )
        self.final_attn_token_to_image = Attention(
            embedding_dim, num_heads, downsample_rate=attention_downsample_rate
        )
        self.norm_final_attn = nn.LayerNorm(embedding_dim)

    def forward(
        self,
        image_embedding: torch.Tensor,
        image_pe: torch.Tensor,
        point_embedding: torch.Tensor,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        keys = _token_major(image_embedding)  # [B, HW, C]
        key_pe = _token_major(image_pe)  # free for get_dense_pe()'s token-major encoding
        queries = point_embedding
        for layer in self.layers:
            queries, keys = layer(
                queries=queries, keys=keys, query_pe=point_embedding, key_pe=key_pe
            )
        q = queries + point_embedding
        k = keys + key_pe
        queries = self.norm_final_attn(queries + self.final_attn_token_to_image(q=q, k=k, v=keys))
        return queries, keys
