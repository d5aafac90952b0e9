"""Memory attention: conditions the current frame's features on the memory bank."""

from __future__ import annotations

from typing import cast

import torch
from torch import nn

from model._bf16 import Linear
from model._layers import activate_fresh, activation_fn, is_expanded
from model.transformer import RoPEAttention


class MemoryAttentionLayer(nn.Module):
    """Pre-norm layer: RoPE self-attention, RoPE cross-attention to memories, FFN.

    tgt `[B, N, d_model]` (current frame tokens), memory `[B, M, mem_dim]`, pos `[B, M, mem_dim]`
    (memory encodings), query_pos `[B, N, d_model]` -> `[B, N, d_model]`.
    """

    def __init__(
        self,
        d_model: int = 256,
        mem_dim: int = 64,
        dim_feedforward: int = 2048,
        dropout: float = 0.1,
        activation: str = "relu",
        rope_theta: float = 10000.0,
        pos_enc_at_attn: bool = False,
        pos_enc_at_cross_attn_keys: bool = True,
        pos_enc_at_cross_attn_queries: bool = False,
    ) -> None:
        super().__init__()
        self.d_model = d_model
        self.self_attn = RoPEAttention(d_model, 1, dropout=dropout, rope_theta=rope_theta)
        self.cross_attn_image = RoPEAttention(
            d_model,
            1,
            dropout=dropout,
            kv_in_dim=mem_dim,
            rope_theta=rope_theta,
            rope_k_repeat=True,
        )
        self.linear1 = Linear(d_model, dim_feedforward)
        self.dropout = nn.Dropout(dropout)
        self.linear2 = Linear(dim_feedforward, d_model)
        self.norm1 = nn.LayerNorm(d_model)
        self.norm2 = nn.LayerNorm(d_model)
        self.norm3 = nn.LayerNorm(d_model)
        self.dropout1 = nn.Dropout(dropout)
        self.dropout2 = nn.Dropout(dropout)
        self.dropout3 = nn.Dropout(dropout)
        self.activation = activation_fn(activation)
        self.pos_enc_at_attn = pos_enc_at_attn
        self.pos_enc_at_cross_attn_keys = pos_enc_at_cross_attn_keys
        self.pos_enc_at_cross_attn_queries = pos_enc_at_cross_attn_queries

    def self_attention(self, tgt: torch.Tensor, query_pos: torch.Tensor) -> torch.Tensor:
        """Pre-norm RoPE self-attention with its residual: `[B, N, d]` -> `[B, N, d]`."""
        x = self.norm1(tgt)
        q = x + query_pos if self.pos_enc_at_attn else x
        return _add_residual(tgt, self.dropout1(self.self_attn(q, q, v=x)))

    def cross_queries(self, tgt: torch.Tensor, query_pos: torch.Tensor) -> torch.Tensor:
        """Rotated cross-attention query heads `[B, 1, N, d]` of the tokens `[B, N, d]`."""
        x = self.norm2(tgt)
        if self.pos_enc_at_cross_attn_queries:
            x = x + query_pos
        return self.cross_attn_image.project_queries(x)

    def cross_attention(
        self,
        tgt: torch.Tensor,
        queries: torch.Tensor,
        memory: torch.Tensor,
        memory_keys: torch.Tensor,
        num_k_exclude_rope: int = 0,
    ) -> torch.Tensor:
        """Attend from `queries` (see `cross_queries`) to the memory, add to `tgt` `[B, N, d]`.

        memory `[B, M, mem_dim]` gives the values, memory_keys (memory, plus its position
        encoding when `pos_enc_at_cross_attn_keys`) the keys.
        """
        attn = self.cross_attn_image
        k, v = attn.project_keys_values(memory_keys, memory, queries.shape[-2], num_k_exclude_rope)
        return _add_residual(tgt, self.dropout2(attn.attend(queries, k, v)))

    def feed_forward(self, tgt: torch.Tensor) -> torch.Tensor:
        """Pre-norm MLP with its residual: `[B, N, d]` -> `[B, N, d]`."""
        x = activate_fresh(self.linear1(self.norm3(tgt)), self.activation)
        return _add_residual(tgt, self.dropout3(self.linear2(self.dropout(x))))

    def forward(
        self,
        tgt: torch.Tensor,
        memory: torch.Tensor,
        pos: torch.Tensor,
        query_pos: torch.Tensor,
        num_k_exclude_rope: int = 0,
    ) -> torch.Tensor:
        tgt = self.self_attention(tgt, query_pos)
        queries = self.cross_queries(tgt, query_pos)
        keys = memory + pos if self.pos_enc_at_cross_attn_keys else memory
        tgt = self.cross_attention(tgt, queries, memory, keys, num_k_exclude_rope)
        return self.feed_forward(tgt)


def _add_residual(tgt: torch.Tensor, update: torch.Tensor) -> torch.Tensor:
    """`tgt + update`, written into `update` (a fresh result) when no autograd graph is being
    recorded and the dtypes agree (under autocast the update may be bf16 and `tgt` float32)."""
    if torch.is_grad_enabled() or update.dtype != tgt.dtype or update.shape != tgt.shape:
        return tgt + update
    return update.add_(tgt)


class MemoryAttention(nn.Module):
    """A stack of `MemoryAttentionLayer`s plus a final LayerNorm, on sequence-first tensors.

    curr `[N, B, d_model]` (or a 1-element list of it), curr_pos likewise, memory and memory_pos
    `[M, B, mem_dim]`; the last `num_obj_ptr_tokens` memory tokens are object pointers (no RoPE).
    Returns `[N, B, d_model]`.
    """

    def __init__(
        self,
        d_model: int = 256,
        mem_dim: int = 64,
        num_layers: int = 4,
        dim_feedforward: int = 2048,
        dropout: float = 0.1,
        rope_theta: float = 10000.0,
        pos_enc_at_input: bool = True,
    ) -> None:
        super().__init__()
        self.d_model = d_model
        self.num_layers = num_layers
        self.layers = nn.ModuleList(
            MemoryAttentionLayer(
                d_model=d_model,
                mem_dim=mem_dim,
                dim_feedforward=dim_feedforward,
                dropout=dropout,
                rope_theta=rope_theta,
            )
            for _ in range(num_layers)
        )
        self.norm = nn.LayerNorm(d_model)
        self.pos_enc_at_input = pos_enc_at_input

    def forward(
        self,
        curr: torch.Tensor | list[torch.Tensor],
        memory: torch.Tensor,
        curr_pos: torch.Tensor | list[torch.Tensor] | None = None,
        memory_pos: torch.Tensor | None = None,
        num_obj_ptr_tokens: int = 0,
    ) -> torch.Tensor:
        if isinstance(curr, list):
            curr = curr[0]
        if isinstance(curr_pos, list):
            curr_pos = curr_pos[0]
        if curr_pos is None or memory_pos is None:
            raise ValueError("memory attention needs curr_pos and memory_pos")
        if curr.shape[1] != memory.shape[1]:
            raise ValueError("current features and memory differ in batch size")
        batch = curr.shape[1]
        # Objects tracked together share the frame's features (expanded, not copied): until the
        # first cross-attention the layers see identical rows, so that part runs once.
        shared = is_expanded(curr, 1) and is_expanded(curr_pos, 1)  # [N, B, C]
        if shared:
            curr, curr_pos = curr[:, :1], curr_pos[:, :1]
        output = curr
        if self.pos_enc_at_input:
            output = output + 0.1 * curr_pos
        # the layers work batch first
        output = output.transpose(0, 1).contiguous()
        query_pos = curr_pos.transpose(0, 1)
        # contiguous: every layer projects them (Linear is slower on strided input, bf16 most)
        memory = memory.transpose(0, 1).contiguous()
        memory_keys = memory + memory_pos.transpose(0, 1)  # the same for every layer
        layers = cast(list[MemoryAttentionLayer], list(self.layers))
        queries: torch.Tensor | None = None
        if shared:
            output = layers[0].self_attention(output, query_pos)
            queries = layers[0].cross_queries(output, query_pos)
        if batch > 1 and output.device.type == "cpu" and not torch.is_grad_enabled():
            # On CPU one object at a time is faster (same FLOPs, cache-sized intermediates);
            # the shared rows above were still computed once.
            rows = [
                self._layers(
                    layers,
                    output if shared else output[i : i + 1],
                    queries,
                    query_pos if query_pos.size(0) == 1 else query_pos[i : i + 1],
                    memory[i : i + 1],
                    memory_keys[i : i + 1],
                    num_obj_ptr_tokens,
                )
                for i in range(batch)
            ]
            output = torch.cat(rows)
        else:
            if shared:
                assert queries is not None
                output = output.expand(batch, -1, -1)
                queries = queries.expand(batch, -1, -1, -1)
            output = self._layers(
                layers, output, queries, query_pos, memory, memory_keys, num_obj_ptr_tokens
            )
        return self.norm(output).transpose(0, 1)

    @staticmethod
    def _layers(
        layers: list[MemoryAttentionLayer],
        output: torch.Tensor,
        first_queries: torch.Tensor | None,
        query_pos: torch.Tensor,
        memory: torch.Tensor,
        memory_keys: torch.Tensor,
        num_obj_ptr_tokens: int,
    ) -> torch.Tensor:
        """Run the layers on batch-first tokens `[B, N, d]` (`query_pos` broadcasts to them).

        With `first_queries`, `output` has already been through the first layer's
        self-attention and these are its cross-attention queries.
        """
        for i, layer in enumerate(layers):
            if i == 0 and first_queries is not None:
                queries = first_queries
            else:
                output = layer.self_attention(output, query_pos)
                queries = layer.cross_queries(output, query_pos)
            keys = memory_keys if layer.pos_enc_at_cross_attn_keys else memory
            output = layer.cross_attention(
                output, queries, memory, keys, num_k_exclude_rope=num_obj_ptr_tokens
            )
            output = layer.feed_forward(output)
        return output
